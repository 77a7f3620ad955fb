"""Speed and memory benchmarks of fastsiren (installed as ``fastsiren.benchmarks``)."""
