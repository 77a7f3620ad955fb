"""How much the CPU emulation of the CUDA kernels can see: a mutation check.

    python -m benchmarks.cuda_mutations            # writes benchmarks/results/cuda-mutations.json
    python -m benchmarks.cuda_mutations --list     # the mutants, without running them

Each mutant is a copy of ``csrc/`` with one deliberate defect: every ``__syncthreads()`` of the
kernels removed in turn, and a hand-picked set of indexing, bounds, reduction and jet-math
slips. For each, the emulated extension is built from the copy (``FASTSIREN_CSRC_DIR``, into a
temporary cache) and the emulated tier of ``tests/test_cuda_kernels.py`` runs until its first
failure; a mutant that tier misses runs again with the kernels built with AddressSanitizer
(``FASTSIREN_CUDA_EMULATE=asan``), which reports out-of-bounds accesses whose values never
reach a result. A mutant is *caught* when the tier fails. The unmutated sources run first,
in both modes, and must pass. Some defects are invisible to the emulation by design (it runs
blocks one after another, so a lost atomic update between blocks cannot happen there); they
are listed with that reason, not left out. The results file records each mutant's seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from fastsiren import cuda_ext
from fastsiren.tasks import common

from .records import REPO_ROOT, RESULTS_DIR, environment

MUTATIONS_FILE = "cuda-mutations.json"
TESTS = REPO_ROOT / "tests" / "test_cuda_kernels.py"


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to csrc/
    old: str
    new: str
    occurrence: int  # which occurrence of `old` to replace (0-based)
    what: str
    blind_spot: str = ""  # why the emulation cannot see it, when that is expected


BARRIER = "__syncthreads();"

HAND_PICKED = (
    Mutant("reduction-drops-a-row-group", "epilogue_common.cuh", "g < kGroups;", "g < kGroups - 1;", 0,
           "the block reduction of bias/weight gradients skips the last row group"),
    Mutant("grid-drops-tail-rows", "epilogue_common.cuh", "(n + kRowsPerBlock - 1) / kRowsPerBlock",
           "n / kRowsPerBlock", 0, "the launch grid rounds the number of row blocks down"),
    Mutant("first-layer-drops-abar", "first_layer.cu", "wacc[k] += zbar * x[row * dim + k] + abar[k];",
           "wacc[k] += zbar * x[row * dim + k];", 0,
           "the first layer's weight gradient forgets the derivative streams' adjoint"),
    Mutant("laplacian-adjoint-sign", "jet_math.cuh", "pbar[k * bs] = wc * g - T(2) * w2s * ca * mbar;",
           "pbar[k * bs] = wc * g + T(2) * w2s * ca * mbar;", 0,
           "a sign slip in the hidden layers' derivative-stream adjoint"),
    Mutant("laplacian-weight-index", "jet_math.cuh", "const T ca = lw[k - 1] * a;", "const T ca = lw[k] * a;", 0,
           "the hidden layers' adjoint reads the Laplacian weight of the next dimension"),
    Mutant("first-layer-unweighted-q", "first_layer.cu", "q += lw[k] * wrow[k] * wrow[k];",
           "q += wrow[k] * wrow[k];", 0, "the first layer's q ignores the Laplacian's weights"),
    Mutant("epilogue-bias-twice", "jet_math.cuh", "const T z = pre[0] + bias;",
           "const T z = pre[0] + bias * T(2);", 0, "the epilogue adds the bias twice"),
    Mutant("render-weight-tile-stride", "render.cu", "wt[kk * ldw + o] = w[", "wt[kk * ld + o] = w[", 0,
           "the fused render stages W with the activation stride instead of its own"),
    Mutant("epilogue-no-tail-check", "epilogue_common.cuh", "    if (row >= n) break;\n", "", 0,
           "the epilogue kernels' last row block runs past the N points"),
    Mutant("render-stages-one-too-many", "render.cu", "idx < kc * f;", "idx <= kc * f;", 0,
           "the fused render stages one element past its W slice (read and shared-memory write)"),
    Mutant("render-no-tail-check", "render.cu", "if (row < n) jet::layer_fwd(", "jet::layer_fwd(", 0,
           "the fused render writes the output streams of points past N"),
    Mutant("grad-rbar-drops-cos", "grad_ops.cu", "rbar[o * stride + off] = d * cv;", "rbar[o * stride + off] = d;", 0,
           "the reverse-mode gradient's adjoint forgets the cosine of the pre-activation"),
    Mutant("grad-zbar-sign", "grad_ops.cu", "if (t != nullptr) v -= h[off] * t[off];",
           "if (t != nullptr) v += h[off] * t[off];", 0,
           "a sign slip in the reverse-mode gradient's pre-activation adjoint"),
    Mutant("atomic-as-plain-add", "epilogue_common.cuh", "atomicAdd(dst, sum);", "*dst += sum;", 0,
           "the cross-block gradient sum loses atomicity",
           blind_spot="blocks run one after another in the emulation, so no update is ever lost"),
    Mutant("tf32-epilogue-drops-rest", "tf32.cuh", "rest[s * stride] = x - h;", "rest[s * stride] = 0.0f;", 0,
           "a layer epilogue's 3xTF32 split writes no remainders (the heads alone reach the GEMMs)"),
    Mutant("tf32-split-kernel-no-rounding", "tf32_split.cu", "const float h = tf32::head(v);",
           "const float h = v;", 0, "the one-pass split passes the float32 value as the head, unrounded"),
    Mutant("tf32-gemm-drops-a-term", "bindings.cpp", "  out.addmm_(a.head, b.rest);\n", "", 0,
           "a 3xTF32 product leaves out head x rest"),
)


def mutants(csrc: Path) -> list[Mutant]:
    """Every barrier removed in turn, then the hand-picked defects."""
    out = []
    for path in sorted(csrc.glob("*.cu")) + sorted(csrc.glob("*.cuh")):
        text = path.read_text()
        for i in range(text.count(BARRIER)):
            line = _line_of(text, BARRIER, i)
            out.append(Mutant(f"no-barrier-{path.stem}-{line}", path.name, BARRIER, "", i,
                              f"the __syncthreads() at {path.name}:{line} removed"))
    return out + list(HAND_PICKED)


def _position(text: str, old: str, occurrence: int) -> int:
    """Index of occurrence number ``occurrence`` (0-based) of ``old`` in ``text``."""
    pos = -1
    for _ in range(occurrence + 1):
        pos = text.index(old, pos + 1)
    return pos


def _line_of(text: str, old: str, occurrence: int) -> int:
    return text.count("\n", 0, _position(text, old, occurrence)) + 1


def apply(src: Path, dst: Path, m: Mutant | None) -> None:
    """Copy the sources ``src`` to ``dst`` with mutant ``m`` applied (None: unchanged)."""
    shutil.copytree(src, dst)
    if m is None:
        return
    path = dst / m.file
    text = path.read_text()
    if text.count(m.old) <= m.occurrence:
        raise ValueError(f"mutant {m.name}: {m.old!r} does not occur {m.occurrence + 1} time(s) in {m.file}")
    pos = _position(text, m.old, m.occurrence)
    path.write_text(text[:pos] + m.new + text[pos + len(m.old):])


def run_tier(csrc: Path, cache: Path, timeout: float, asan: bool = False) -> tuple[bool, str, float]:
    """Run the emulated tier against the sources in ``csrc`` (``asan``: built with
    AddressSanitizer): (passed, summary, seconds)."""
    env = dict(os.environ, **{cuda_ext.CSRC_ENV: str(csrc), cuda_ext.CACHE_ENV: str(cache)})
    env.pop(cuda_ext.EMULATE_ENV, None)  # the tier's fixture sets it
    if asan:
        env.update(cuda_ext.asan_environment())
    # -s: a sanitizer report or a crash inside a test must reach stderr, not pytest's capture
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-x", "-p", "no:cacheprovider", str(TESTS), "-k", "emulated"]
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, env=env)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s (a hang counts as caught)", time.perf_counter() - t0
    lines = res.stdout.strip().splitlines()
    failed = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
    sanitizer = [ln.strip() for ln in res.stderr.splitlines() if "ERROR: AddressSanitizer" in ln]
    crashed = [f"the test process died of signal {-res.returncode}"] if res.returncode < 0 else []
    summary = (sanitizer or failed or crashed or lines[-1:] or [res.stderr.strip()[-300:]])[0]
    return res.returncode == 0, summary, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="", help="comma-separated mutant names (default: all)")
    p.add_argument("--list", action="store_true", help="print the mutants and exit")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant before it counts as a hang")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / MUTATIONS_FILE, help="results file (default: %(default)s)")
    a = p.parse_args(argv)
    src = cuda_ext.csrc_dir()
    todo = mutants(src)
    if a.list:
        for m in todo:
            print(f"{m.name:40s} {m.what}")
        return 0
    if a.only:
        names = {m.name for m in todo}
        wanted = [n.strip() for n in a.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - names)
        if unknown:
            p.error(f"--only: unknown mutant(s) {unknown}; see --list")
        todo = [m for m in todo if m.name in wanted]
    if not TESTS.is_file():
        p.error(f"the emulated tier {TESTS} is not here: run this from a checkout of the repository")

    rows = []
    with tempfile.TemporaryDirectory(prefix="fastsiren-mutants-") as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        base = tmp / "base"
        apply(src, base, None)
        for asan in (False, True):
            ok, summary, secs = run_tier(base, cache, a.timeout, asan)
            mode = "with ASan" if asan else "plain"
            print(f"{'unmutated, ' + mode:40s} {'passes' if ok else 'FAILS'} ({secs:.0f} s) {summary}", flush=True)
            if not ok:
                print(f"the unmutated sources fail the emulated tier ({mode}): fix that first", file=sys.stderr)
                return 1
        for i, m in enumerate(todo):
            work = tmp / f"m{i}"
            apply(src, work, m)
            passed, summary, secs = run_tier(work, cache, a.timeout)
            plain = not passed
            with_asan = plain
            if not plain:  # a wrong result fails both modes alike: ASan only matters for a miss
                passed, asan_summary, asan_secs = run_tier(work, cache, a.timeout, asan=True)
                with_asan, secs = not passed, secs + asan_secs
                summary = asan_summary if with_asan else summary
            rows.append({"name": m.name, "file": m.file, "what": m.what, "caught_plain": plain,
                         "caught": with_asan, "blind_spot": m.blind_spot, "evidence": summary,
                         "seconds": round(secs, 1)})
            verdict = "caught" if plain else ("caught by ASan" if with_asan else "MISSED")
            print(f"{m.name:40s} {verdict} ({secs:.0f} s) {summary}", flush=True)
            shutil.rmtree(work, ignore_errors=True)
    env = environment(torch.device("cpu"))
    doc = {"script": "benchmarks/cuda_mutations.py", **{k: env[k] for k in ("date", "commit", "torch", "python")},
           "tier": "tests/test_cuda_kernels.py -k emulated (FASTSIREN_CUDA_EMULATE=1, then =asan for a miss)",
           "complete": not a.only, "caught_plain": sum(r["caught_plain"] for r in rows),
           "caught": sum(r["caught"] for r in rows), "mutants": len(rows), "rows": rows}
    common.write_json(a.out, doc)
    print(f"caught {doc['caught_plain']} of {doc['mutants']} plain, {doc['caught']} with ASan -> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
