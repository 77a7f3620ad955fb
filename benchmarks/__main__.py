"""``python -m benchmarks ...`` from the repo root: the same as ``fastsiren bench ...``."""

import argparse
import sys

from .cli import add_arguments, main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args()
    try:
        sys.exit(main(args))
    except (ValueError, FileNotFoundError, TypeError, RuntimeError) as exc:
        print(f"benchmarks: error: {exc}", file=sys.stderr)
        sys.exit(2)
