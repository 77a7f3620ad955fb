"""How much the CPU emulation of the CUDA kernels can see: a mutation check.

    python -m benchmarks.cuda_mutations            # writes benchmarks/results/cuda-mutations.json
    python -m benchmarks.cuda_mutations --list     # the mutants, without running them

(one target of the engine in benchmarks/mutations.py, which also has the Triton and torch targets).

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

import os
import shutil
from pathlib import Path

from fastsiren import cuda_ext

from . import mutations
from .mutations import Mutant, line_of
from .records import REPO_ROOT

MUTATIONS_FILE = mutations.results_file("cuda")
TESTS = "tests/test_cuda_kernels.py"


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
            line = line_of(text, BARRIER, i)
            out.append(Mutant(f"no-barrier-{path.stem}-{line}", path.name, BARRIER, "", i,
                              f"the __syncthreads() at {path.name}:{line} removed"))
    return out + list(HAND_PICKED)


def run_tier(csrc: Path, scratch: Path, timeout: float, mode: str = "plain") -> mutations.Outcome:
    """Run the emulated tier against the sources in ``csrc``, built into ``scratch``/cache
    (``mode`` "asan": with AddressSanitizer): (passed, summary, seconds)."""
    env = dict(os.environ, **{cuda_ext.CSRC_ENV: str(csrc), cuda_ext.CACHE_ENV: str(scratch / "cache")})
    env.pop(cuda_ext.EMULATE_ENV, None)  # the tier's fixture sets it
    if mode == "asan":
        env.update(cuda_ext.asan_environment())
    # -s: a sanitizer report or a crash inside a test must reach stderr, not pytest's capture
    return mutations.run_pytest(["-s", TESTS, "-k", "emulated"], REPO_ROOT, env, timeout,
                                stderr_marker="ERROR: AddressSanitizer")


TARGET = mutations.Target(
    name="cuda", tier="tests/test_cuda_kernels.py -k emulated (FASTSIREN_CUDA_EMULATE=1, then =asan for a miss)",
    source=cuda_ext.csrc_dir, mutants=mutants, copy=shutil.copytree, run=run_tier, modes=("plain", "asan"))


def main(argv: list[str] | None = None) -> int:
    return mutations.main(TARGET, argv, __doc__.split("\n\n")[0])


if __name__ == "__main__":
    raise SystemExit(main())
