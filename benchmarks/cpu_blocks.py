"""How many points a CPU block of the torch backend should hold: whole training steps timed
at each block size, interleaved in one process, per suite and width.

    python -m benchmarks.cpu_blocks          # writes benchmarks/results/cpu-blocks.json

On the CPU the torch backend runs a pass in blocks of points (:func:`fastsiren.jet._point_blocks`:
``max(jet.CPU_BLOCK_ROWS, jet.CPU_BLOCK_ELEMS // width)`` points with one stream, half as
many with more). Here each suite's step on ``--points`` points (a network of 3 hidden layers
of the given width) is timed with the block forced to each of ``--block`` points
(``CPU_BLOCK_ELEMS = 0``, ``CPU_BLOCK_ROWS`` set so the block holds that many points), and
with the rule itself. A row gives each block size's median time, the fastest block and the
rule's time over the fastest one's.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from pathlib import Path

import torch

from fastsiren import jet
from fastsiren.tasks import common

from .harness import PROVIDERS, interleaved_times
from .records import RESULTS_DIR, environment
from .suites import default_shape, get_suite

CPU_BLOCKS_FILE = "cpu-blocks.json"
SUITES = ("fit", "poisson-grad", "poisson-laplacian")
RULE = "rule"


def _streams(suite: str) -> int:
    """Streams of the suite's pass on a 2-D input: the rule halves a block above one."""
    return 4 if suite == "poisson-laplacian" else 1


def _stepper(runner, setting: tuple[int, int]):
    """The runner's step with ``(CPU_BLOCK_ROWS, CPU_BLOCK_ELEMS)`` set to ``setting``."""
    def step():
        jet.CPU_BLOCK_ROWS, jet.CPU_BLOCK_ELEMS = setting
        runner.step()
    return step


def measure(suites=SUITES, widths=(64, 128, 256, 512), blocks=(512, 1024, 2048, 4096, 8192),
            points: int = 8192, rounds: int = 7, block_s: float = 0.2, log=print) -> list[dict]:
    cpu = torch.device("cpu")
    saved = jet.CPU_BLOCK_ROWS, jet.CPU_BLOCK_ELEMS
    rows = []
    try:
        for name in suites:
            suite = get_suite(name)
            half = min(_streams(name), 2)
            for width in widths:
                shape = dataclasses.replace(default_shape(name, "default", "cpu"), hidden=width, points=points,
                                            grid_shape=None)
                case = suite.make_case(shape, cpu, torch.float32)
                runner = suite.bind(case, suite.phases[-1], PROVIDERS["torch"].load(cpu))
                fns = {str(b): _stepper(runner, (b * half, 0)) for b in blocks} | {RULE: _stepper(runner, saved)}
                times, _ = interleaved_times(fns, cpu, rounds, block_s)
                ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
                best = min(blocks, key=lambda b: ms[str(b)])
                jet.CPU_BLOCK_ROWS, jet.CPU_BLOCK_ELEMS = saved
                rule_block = jet._point_blocks(points, cpu, _streams(name), width)[0].stop
                row = {"suite": name, "width": width, "points": points,
                       "ms": {str(b): round(ms[str(b)], 3) for b in blocks}, "best_block": best,
                       "rule_block": rule_block, "rule_ms": round(ms[RULE], 3),
                       "rule_over_best": round(ms[RULE] / ms[str(best)], 3)}
                rows.append(row)
                log(f"{name:18s} w={width:4d}: " + " ".join(f"{b}:{ms[str(b)]:.1f}" for b in blocks)
                    + f" ms; best {best}, rule {rule_block} ({row['rule_over_best']:.2f}x the best)")
    finally:
        jet.CPU_BLOCK_ROWS, jet.CPU_BLOCK_ELEMS = saved
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cpu_blocks", description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", action="append", choices=SUITES, help="suites, repeatable (default: all three)")
    p.add_argument("--width", type=int, action="append", help="hidden width, repeatable (default: 64, 128, 256, 512)")
    p.add_argument("--block", type=int, action="append",
                   help="points per block to time, repeatable (default: 512, 1024, 2048, 4096, 8192)")
    p.add_argument("--points", type=int, default=8192, help="points of the step (uniform in [-1, 1]^2)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved timed rounds")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / CPU_BLOCKS_FILE,
                   help="results file (default: %(default)s)")
    a = p.parse_args(argv)
    for flag, values in (("--width", a.width), ("--block", a.block)):
        for v in values or []:
            common.positive(flag, v, int)
    common.positive("--points", a.points, int)
    common.positive("--rounds", a.rounds, int)
    if a.threads is not None:
        common.positive("--threads", a.threads, int)
        torch.set_num_threads(a.threads)
    rows = measure(tuple(a.suite or SUITES), tuple(a.width or (64, 128, 256, 512)),
                   tuple(a.block or (512, 1024, 2048, 4096, 8192)), a.points, a.rounds)
    env = environment(torch.device("cpu"))
    doc = {"script": "benchmarks/cpu_blocks.py", "device": common.device_name("cpu"),
           **{k: env[k] for k in ("date", "commit", "threads", "torch", "python")},
           "method": "torch backend training step (MSE, backward, Adam) with the point block forced to each "
                     "size and with the rule, interleaved in one process, "
                     f"median of {a.rounds} rounds; 3 hidden layers, D=2, out=1",
           "rule": f"max(CPU_BLOCK_ROWS={jet.CPU_BLOCK_ROWS}, CPU_BLOCK_ELEMS={jet.CPU_BLOCK_ELEMS} // width) "
                   "points, halved with more than one stream", "rows": rows}
    common.write_json(a.out, doc)
    print(f"-> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
