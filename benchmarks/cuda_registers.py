"""Registers, spills, stack and shared memory of every CUDA kernel instantiation in csrc/, from
``ptxas -v``, compiled offline for one architecture (default sm_90, the H100/H200): no GPU needed.

Each ``csrc/*.cu`` is compiled with this machine's nvcc at the extension's optimisation and
architecture flags (:func:`fastsiren.cuda_ext.nvcc_flags`, one architecture, SASS only; not the
macros torch's build adds, which do not touch these torch-free kernels) plus ``-Xptxas -v``; every
entry function's resources are parsed from the log and its name demangled (``c++filt``). The
weighted-Laplacian instantiations (``LapWeights``) are paired with their unit-weight twins
(``UnitWeights``, the plain Laplacian) and the difference is written beside them, so what
``laplacian_weights`` costs in registers is recorded per kernel.

    python -m benchmarks.cuda_registers [--arch 90] [--out FILE]

Writes ``benchmarks/results/cuda-registers-sm<arch>.json`` with the commit and nvcc version.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastsiren import cuda_ext
from fastsiren.tasks import common
from fastsiren.tasks.common import git_commit

from .records import REPO_ROOT, RESULTS_DIR

REGISTERS_FILE = "cuda-registers-sm90.json"  # the report reads sm_90's (--arch 90, the default)
_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(\w+)'")
_PROPS = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_FIELDS = {"regs": re.compile(r"Used (\d+) registers"), "smem": re.compile(r"(\d+) bytes smem"),
           "cum_stack": re.compile(r"(\d+) bytes cumulative stack size")}


def nvcc() -> str:
    """The nvcc this machine has (:func:`fastsiren.cuda_ext.find_nvcc`); an error that says so if none."""
    found = cuda_ext.find_nvcc()
    if found is None:
        raise SystemExit("benchmarks.cuda_registers needs nvcc (the CUDA toolkit): none on PATH or in CUDA_HOME")
    return found


def parse_ptxas(log: str) -> list[dict]:
    """One dict per entry function in a ``ptxas -v`` log: mangled ``name``, ``arch``, ``regs``,
    ``smem`` (static shared bytes), ``stack`` (its own frame), ``cum_stack`` (with its callees;
    newer ptxas only, else None), ``spill_st``, ``spill_ld``. Each field is read on its own (the
    "Used ..." line's fields vary between ptxas versions), and a "Function properties" block
    counts only for the function it names (a called function's block is skipped)."""
    out: list[dict] = []
    props_for = None
    for line in log.splitlines():
        if m := _ENTRY.search(line):
            out.append({"name": m.group(1), "arch": m.group(2), "regs": None, "smem": 0, "cum_stack": None,
                        "stack": 0, "spill_st": 0, "spill_ld": 0})
            props_for = None
        elif m := _PROPS.search(line):
            props_for = m.group(1)
        elif out and (m := _FRAME.search(line)):
            if props_for == out[-1]["name"]:
                out[-1]["stack"], out[-1]["spill_st"], out[-1]["spill_ld"] = map(int, m.groups())
        elif out and "Used " in line:
            for field, rx in _FIELDS.items():
                if m := rx.search(line):
                    out[-1][field] = int(m.group(1))
    return out


def demangle(names: list[str]) -> list[str]:
    """``c++filt`` of each name (the names themselves where c++filt is absent)."""
    tool = shutil.which("cu++filt") or shutil.which("c++filt")
    if tool is None or not names:
        return list(names)
    res = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True, check=True)
    got = res.stdout.splitlines()
    return got if len(got) == len(names) else list(names)


def compile_file(nvcc_path: str, cu: Path, arch: str, tmp: Path) -> list[dict]:
    flags = [f for f in cuda_ext.nvcc_flags([arch]) if "code=compute_" not in f]  # SASS only: one ptxas run
    cmd = [nvcc_path, "-c", "-std=c++17", *flags, "-Xptxas", "-v", f"-I{cu.parent}", str(cu),
           "-o", str(tmp / (cu.stem + ".o"))]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"nvcc failed on {cu.name} (exit {res.returncode}):\n{res.stderr[-4000:]}")
    rows = parse_ptxas(res.stderr)
    for row, pretty in zip(rows, demangle([r["name"] for r in rows])):
        row["file"], row["kernel"] = cu.name, pretty
    return rows


def pair_weighted(rows: list[dict]) -> list[dict]:
    """Each ``LapWeights`` instantiation with its ``UnitWeights`` twin (same file, same name
    otherwise): registers and spill bytes of both and the differences."""
    unit = {(r["file"], r["kernel"]): r for r in rows if "UnitWeights" in r["kernel"]}
    pairs = []
    for r in rows:
        if "LapWeights" not in r["kernel"]:
            continue
        twin = unit.get((r["file"], r["kernel"].replace("LapWeights", "UnitWeights")))
        if twin is None:
            continue
        pairs.append({"file": r["file"], "kernel": twin["kernel"],
                      "regs_unit": twin["regs"], "regs_weighted": r["regs"], "regs_delta": r["regs"] - twin["regs"],
                      "spill_st_unit": twin["spill_st"], "spill_st_weighted": r["spill_st"],
                      "stack_unit": twin["stack"], "stack_weighted": r["stack"]})
    return pairs


def nvcc_version(nvcc_path: str) -> str:
    out = subprocess.run([nvcc_path, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"release ([\d.]+), (V[\d.]+)", out)
    return f"{m.group(1)} ({m.group(2)})" if m else out.strip().splitlines()[-1] if out.strip() else "?"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cuda_registers", description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="90", help="architecture, as FASTSIREN_CUDA_ARCH takes it: 90, 9.0, sm_90a, 80")
    p.add_argument("--jobs", type=int, default=2, help="files compiled at once")
    p.add_argument("--out", type=Path, default=None,
                   help="results file (default: benchmarks/results/cuda-registers-sm<arch>.json)")
    a = p.parse_args(argv)
    common.positive("--jobs", a.jobs, int)
    archs = cuda_ext.parse_arch_list(a.arch)
    if len(archs) != 1:
        raise SystemExit(f"--arch {a.arch!r}: give one architecture")
    arch = archs[0]
    tool = nvcc()
    kernels = sorted(cuda_ext.csrc_dir().glob("*.cu"))
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(a.jobs) as pool:
        per_file = list(pool.map(lambda cu: compile_file(tool, cu, arch, Path(tmp)), kernels))
    rows = [r for rs in per_file for r in rs]
    if not rows:
        raise SystemExit("ptxas -v reported no entry function: nothing to record")
    pairs = pair_weighted(rows)
    doc = {"script": "benchmarks/cuda_registers.py", "argv": sys.argv[1:] if argv is None else list(argv),
           "commit": git_commit(REPO_ROOT, length=10), "nvcc": nvcc_version(tool), "arch": f"sm_{arch}",
           "flags": [f for f in cuda_ext.nvcc_flags([arch]) if "code=compute_" not in f] + ["-Xptxas", "-v"],
           "kernels": len(rows), "with_spills": sum(1 for r in rows if r.get("spill_st", 0) > 0),
           "rows": rows, "weighted_vs_unit": pairs}
    out = a.out or RESULTS_DIR / f"cuda-registers-sm{arch}.json"
    common.write_json(out, doc)
    width = max(len(r["kernel"]) for r in rows)
    for r in sorted(rows, key=lambda r: (r["file"], r["kernel"])):
        print(f"{r['file']:16s} {r['kernel'][:120]:{min(width, 120)}s} regs {r['regs']:3d}  "
              f"spill {r.get('spill_st', 0):4d}/{r.get('spill_ld', 0):4d} B  stack {r.get('stack', 0):4d} B  "
              f"smem {r['smem']:6d} B")
    if pairs:
        deltas = [q["regs_delta"] for q in pairs]
        print(f"weighted vs unit weights: {len(pairs)} pairs, register difference {min(deltas)}..{max(deltas)}")
    print(f"{len(rows)} kernels, {doc['with_spills']} with spill stores -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
