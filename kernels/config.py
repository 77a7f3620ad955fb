"""Launch configurations and the precision option of the Triton kernels.

Precision (what ``tl.dot`` does with fp32 operands):

``ieee``    full fp32 products; the reference accuracy. Hopper has no fp32 tensor-core
            instruction, so these compile to FMA loops (no tensor cores): the slow path.
``tf32x3``  three TF32 MMAs per product (split hi/lo): close to fp32, about 3x the TF32 cost.
``tf32``    one TF32 MMA: 10-bit mantissa inputs. A sine layer multiplies every
            pre-activation error by omega_0 (30), so this is the risky one.
``fp16`` / ``bf16``  inference only (``render`` / no-grad forward): operands rounded to half
            precision, accumulation and the sine epilogue in fp32.

float64 networks always run ``ieee`` (TF32 does not apply to fp64 operands).

The training default is ``tf32x3``: ``benchmarks/precision.py`` measures the error of every
precision against float64 (values, jets, the PSNR a fit reaches) and picks the fastest that
keeps the PSNR within 0.1 dB of float64 and the fitted jets' error under 1e-3. On an H200
(``benchmarks/results/precision-gpu.json``) that was ``tf32x3``: the same errors as ``ieee``
and a faster step. Inference takes the same default (its value error is the training
kernels' value error above); the benchmarks time ``ieee`` beside it as ``triton+ieee``.
``benchmarks/precision.py`` now also times each precision's render and checks its image
against the float64 render (``recommended_infer_default``, by the rule its docstring states);
the inference default changes when a GPU run of it says so.
``FASTSIREN_TRITON_PRECISION`` (training) and
``FASTSIREN_TRITON_INFER_PRECISION`` (inference) override it, as do :func:`set_precision`
and the :func:`precision` context manager.

Launch settings come from the plain functions below (no autotuning: it cannot run under
the interpreter, and the same function must serve the CPU tests and the GPU).
``FASTSIREN_TRITON_GEMM_TILES="rows,block_f,block_k,warps,stages"`` replaces the fp32 GEMM
tiles on a GPU, ``FASTSIREN_TRITON_WGRAD_TILES`` those of the weight-gradient kernel alone (it
took most of a Triton training step on an H200, ``benchmarks/results/profile-gpu.json``):
``benchmarks/triton_tune.py`` sweeps both and times whole training steps.

Weight gradients (:func:`set_wgrad`, ``FASTSIREN_TRITON_WGRAD``): ``cublas`` (the default)
writes the layer inputs' post-activation streams once with an epilogue-only kernel and makes the
weight gradient one cuBLAS product (at :func:`fastsiren.backends.set_gemm_precision`) over the
stacked streams, as the cuda backend does: one (S, N, K) tensor per layer more for the duration
of the product. ``fused`` runs them in the Triton kernel that recomputes those streams while it
loads them (no extra tensor). On an H200 (``benchmarks/results/fit.csv`` and
``poisson-laplacian.csv``, run f9d3b3ae00bf) ``cublas`` made the fit step 1.72x and the Poisson
Laplacian step 1.79x faster than ``fused``, at 9% more peak memory, so it became the default;
the benchmarks time ``fused`` as ``triton+fusedw``.

GEMMs (:func:`set_gemm`, ``FASTSIREN_TRITON_GEMM``): ``triton`` (the default) runs the fused GEMM
+ jet epilogue kernels; ``cublas`` makes every training GEMM but the first layer's of a jet one
``torch.matmul`` over the stacked streams and runs the jet epilogue and its adjoint as their own
elementwise kernels, the cuda backend's design (on the H200 its Poisson-Laplacian step ran 2x
faster than the Triton one, ``poisson-laplacian.csv`` run f9d3b3ae00bf). Timed as
``triton+cublas``; not yet measured on a GPU, so the default stays until a run says otherwise.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

import torch

from fastsiren.backends import EnvChoice

PRECISIONS = ("ieee", "tf32x3", "tf32")
INFER_PRECISIONS = PRECISIONS + ("fp16", "bf16")
DEFAULT_PRECISION = "tf32x3"
DEFAULT_INFER_PRECISION = "tf32x3"
PRECISION_ENV = "FASTSIREN_TRITON_PRECISION"
GEMM_TILES_ENV = "FASTSIREN_TRITON_GEMM_TILES"
WGRAD_TILES_ENV = "FASTSIREN_TRITON_WGRAD_TILES"
INFER_PRECISION_ENV = "FASTSIREN_TRITON_INFER_PRECISION"
WGRAD_MODES = ("fused", "cublas")
DEFAULT_WGRAD = "cublas"
WGRAD_ENV = "FASTSIREN_TRITON_WGRAD"

_chosen: dict[str, str | None] = {"train": None, "infer": None}
GEMM_MODES = ("triton", "cublas")
DEFAULT_GEMM = "triton"
GEMM_ENV = "FASTSIREN_TRITON_GEMM"


_WGRAD = EnvChoice(WGRAD_ENV, WGRAD_MODES, DEFAULT_WGRAD)
_GEMM = EnvChoice(GEMM_ENV, GEMM_MODES, DEFAULT_GEMM)


def set_wgrad(mode: str | None) -> None:
    """How the training backward computes weight gradients: "cublas" or "fused" (module
    docstring); None goes back to :data:`WGRAD_ENV`, else :data:`DEFAULT_WGRAD`."""
    _WGRAD.set(mode)


def wgrad_mode() -> str:
    """The current choice of :func:`set_wgrad`."""
    return _WGRAD.get()


def set_gemm(mode: str | None) -> None:
    """Where the training kernels' GEMMs run: "triton" (the fused GEMM + jet epilogue kernels)
    or "cublas" (cuBLAS, at :func:`fastsiren.backends.set_gemm_precision`, with the jet epilogue and
    its adjoint as their own elementwise kernels, as the cuda backend does); None goes back to
    :data:`GEMM_ENV`, else :data:`DEFAULT_GEMM`. Inference keeps the Triton GEMMs (their
    tf32x3 render beat cuBLAS fp32 on an H200). The benchmarks time "cublas" as ``triton+cublas``."""
    _GEMM.set(mode)


def gemm_mode() -> str:
    """The current choice of :func:`set_gemm`."""
    return _GEMM.get()


def _check(value: str | None, allowed: tuple[str, ...], name: str) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"{name}={value!r} is not a Triton precision; expected one of {list(allowed)}")


def set_precision(train: str | None = None, infer: str | None = None) -> None:
    """Set the precision of training kernels (``train``) and of inference (``infer``).

    None leaves a setting unchanged. See the module docstring for the choices.
    """
    _check(train, PRECISIONS, "train")
    _check(infer, INFER_PRECISIONS, "infer")
    if train is not None:
        _chosen["train"] = train
    if infer is not None:
        _chosen["infer"] = infer


def reset_precision() -> None:
    """Back to the defaults (the environment variables, else :data:`DEFAULT_PRECISION`)."""
    _chosen["train"] = _chosen["infer"] = None


@contextlib.contextmanager
def precision(train: str | None = None, infer: str | None = None) -> Iterator[None]:
    """Context manager form of :func:`set_precision`; restores the previous settings."""
    saved = dict(_chosen)
    set_precision(train, infer)
    try:
        yield
    finally:
        _chosen.update(saved)


def train_precision(dtype: torch.dtype) -> str:
    """The ``tl.dot`` input precision for the training kernels on ``dtype`` operands."""
    if dtype == torch.float64:
        return "ieee"
    p = _chosen["train"] or os.environ.get(PRECISION_ENV) or DEFAULT_PRECISION
    _check(p, PRECISIONS, PRECISION_ENV)
    return p


def infer_precision(dtype: torch.dtype) -> str:
    """The precision of inference kernels (one of :data:`INFER_PRECISIONS`) on ``dtype``."""
    if dtype == torch.float64:
        return "ieee"
    p = _chosen["infer"] or os.environ.get(INFER_PRECISION_ENV) or DEFAULT_INFER_PRECISION
    _check(p, INFER_PRECISIONS, INFER_PRECISION_ENV)
    return p


def interpreting() -> bool:
    """True when Triton kernels run under the CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def stream_pad(streams: int) -> int:
    """Streams padded to a power of two: the stream axis of a tile (S_PAD, BLOCK_N, F)."""
    return 1 << max(0, (streams - 1).bit_length())


def _pow2_at_least(v: int, lo: int) -> int:
    return max(lo, 1 << max(0, (v - 1).bit_length()))


@dataclass(frozen=True)
class GemmConfig:
    """Tile of a stacked-stream GEMM: ``rows = S_PAD * block_n`` rows (the streams of
    ``block_n`` points), ``block_f`` output columns, ``block_k`` of the reduction per step."""

    block_n: int
    block_f: int
    block_k: int
    num_warps: int
    num_stages: int
    split: int = 1


def gemm_tiles_override(wgrad: bool = False) -> tuple[int, int, int, int, int] | None:
    """``(rows, block_f, block_k, num_warps, num_stages)`` from :data:`GEMM_TILES_ENV`, or for the
    weight-gradient kernel (``wgrad``) from :data:`WGRAD_TILES_ENV` first; None if unset."""
    names = (WGRAD_TILES_ENV, GEMM_TILES_ENV) if wgrad else (GEMM_TILES_ENV,)
    name, raw = next(((n, os.environ.get(n, "").strip()) for n in names if os.environ.get(n, "").strip()),
                     (None, ""))
    if not raw:
        return None
    try:
        rows, block_f, block_k, warps, stages = (int(v) for v in raw.split(","))
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected five integers 'rows,block_f,block_k,warps,stages'") from None
    if any(v < 1 or v & (v - 1) for v in (rows, block_f, block_k, warps)) or rows < 16 or block_k < 16 or stages < 1:
        raise ValueError(f"{name}={raw!r}: rows, block_f, block_k and warps must be powers of two "
                         "(rows and block_k >= 16), stages >= 1")
    return rows, block_f, block_k, warps, stages


# (rows, block_f, block_k) of the interpreter's GEMM tiles; None: one tile across every width up
# to 64 (the fastest under the interpreter, but the K loop, the column tiles and the weight
# gradient's K tiles then run once). The CPU tests run the float64 checks at small tiles too.
INTERPRET_TILES: tuple[int, int, int] | None = None


def gemm_config(n: int, k: int, f: int, s_pad: int, dtype: torch.dtype, split_n: bool = False) -> GemmConfig:
    """Tiles for a GEMM over ``s_pad`` stacked streams of ``n`` points, reduction ``k``,
    output width ``f``. ``split_n`` (weight gradients, which reduce over the points) also
    picks how many programs share the point range so the grid fills the GPU."""
    if interpreting():
        # The interpreter runs programs one after another: few, large tiles are fastest.
        rows = 128
        block_f, block_k, warps, stages = _pow2_at_least(min(f, 64), 16), _pow2_at_least(min(k, 64), 16), 4, 1
        if INTERPRET_TILES is not None:
            rows, tile_f, tile_k = INTERPRET_TILES
            block_f, block_k = min(block_f, tile_f), min(block_k, tile_k)
    elif dtype == torch.float64:
        rows, block_f, block_k, warps, stages = 64, 32, 16, 4, 2
    else:
        # jet tiles (s_pad > 1) keep about 8 (rows, block_f) fp32 tiles alive in the epilogue:
        # with 4 warps ptxas spills registers at width 256, 8 warps much less (benchmarks/compile_sm90.py).
        # The weight gradient (split_n) spills at 4 warps even for one stream (tf32x3, width 256:
        # benchmarks/results/compile-sm90-wgrad-w4.json) and not at 8 (compile-sm90-wgrad.json).
        rows, block_f, block_k, warps, stages = 128, 64, 32, (8 if s_pad > 1 or split_n else 4), 3
        rows, block_f, block_k, warps, stages = gemm_tiles_override(split_n) or (rows, block_f, block_k, warps, stages)
        block_f = min(block_f, _pow2_at_least(f, 16))
        block_k = min(block_k, _pow2_at_least(k, 16))
    # Every tile has ``rows`` = S_PAD * block_n rows (>= 16, as tl.dot needs).
    block_n = max(1, rows // s_pad)
    split = 1
    n_blocks = -(-n // block_n)
    if split_n and interpreting():
        # Two partial sums whenever there are two point blocks, so the CPU tests cover the
        # split reduction the GPU relies on.
        split = min(2, n_blocks)
    elif split_n:
        tiles = -(-f // block_f) * -(-k // block_k)
        # About 4 programs per SM on a 132-SM H100, each with at least 8 point blocks.
        split = max(1, min(528 // max(tiles, 1), n_blocks // 8))
    return GemmConfig(block_n, block_f, block_k, warps, stages, split)


@dataclass(frozen=True)
class RenderConfig:
    """Tile of the fused render kernel: ``block_n`` points, hidden width padded to
    ``width_pad`` and held as ``chunks`` register tiles of ``width_pad // chunks`` columns."""

    block_n: int
    width_pad: int
    chunks: int
    num_warps: int


# The fused render kernel keeps a whole hidden activation of its points in registers as at
# most four column chunks; wider networks fall back to the per-layer kernels. At width 512
# the fp32 kernel spills tens of KB a thread on sm_90 (benchmarks/compile_sm90.py), and the
# stack it needs reserves GBs of local memory: 256 is the widest that pays.
MAX_FUSED_WIDTH = 256


def render_config(width: int, s_pad: int, precision: str) -> RenderConfig | None:
    """Tiles of the fused render kernel, or None if ``width`` cannot be fused."""
    if width > MAX_FUSED_WIDTH:
        return None
    width_pad = _pow2_at_least(width, 16)
    chunks = min(4, width_pad // 16)
    if interpreting():
        return RenderConfig(max(16, 128 // s_pad), width_pad, chunks, 4)
    # Rows of the register tile (streams x points), the fewest spills per precision in an
    # offline sm_90 compile at widths 128/256 (benchmarks/compile_sm90.py): the FMA dot of
    # ``ieee`` holds operands per thread that grow with the rows, so it takes 16; wgmma (tf32,
    # half) wants 64 rows for one stream and 32 for jets; tf32x3 16.
    if precision == "ieee":
        rows = 16
    elif s_pad == 1:
        rows = 64
    else:
        rows = 16 if precision == "tf32x3" else 32
    # only the tile's rows, s_pad * block_n, must reach 16 (tl.dot), not block_n itself
    block_n = max(-(-16 // s_pad), rows // s_pad)
    return RenderConfig(block_n, width_pad, chunks, 8 if width_pad >= 256 else 4)
