"""How much the CPU tier of the Triton kernels can see: a mutation check.

    python -m benchmarks.triton_mutations          # writes benchmarks/results/triton-mutations.json
    python -m benchmarks.triton_mutations --list   # the mutants, without running them

(one target of the engine in benchmarks/mutations.py: how a mutated copy reaches the tests is
said there). Each mutant is a copy of the checkout with one hand-picked defect in ``kernels/``:
a dropped or sign-slipped term of the jet epilogue and its adjoint (fastsiren/jet.py's
docstring), the Laplacian's weights, tail masks of loads and stores, strides, the
weight-gradient kernel's accumulation and its split over point blocks, the reverse-mode
gradient's fused steps, the 3xTF32 split and the fused render kernel. The tier is
``tests/test_triton.py`` under the Triton interpreter (``TRITON_INTERPRET=1``, as
tests/conftest.py sets it without a GPU), until its first failure.
"""

from __future__ import annotations

from . import mutations
from .mutations import Mutant

MUTATIONS_FILE = mutations.results_file("triton")
MATH, LAYER, GRAD, RENDER = "kernels/jet_math.py", "kernels/jet_layer.py", "kernels/grad_ops.py", "kernels/render.py"

HAND_PICKED = (
    Mutant("epilogue-drops-q-term", MATH, "m = wc * lap - (omega * omega) * s * q", "m = wc * lap", 0,
           "the Laplacian epilogue leaves out -w^2 sin(w z) sum_k a_k^2"),
    Mutant("epilogue-grad-no-cos", MATH, "wc[None, :, :] * p)", "omega * p)", 0,
           "the derivative streams' epilogue forgets cos(w z): J = w a"),
    Mutant("epilogue-unweighted-q", MATH, "q = tl.sum(lw * a * a, axis=0)", "q = tl.sum(a * a, axis=0)", 0,
           "the weighted epilogue's q ignores the Laplacian's weights"),
    Mutant("lap-weights-drop-last", MATH, "lw = tl.load(lw_ptr + (sid - 1), mask=is_a, other=0.0)",
           "lw = tl.load(lw_ptr + (sid - 1), mask=is_a & (sid < D), other=0.0)", 0,
           "the Laplacian's weights are loaded with a mask one short: the last dimension's weight reads 0"),
    Mutant("adjoint-zbar-sign", MATH, "zbar = wc * ybar - w2s * tl.sum(a * g, axis=0)",
           "zbar = wc * ybar + w2s * tl.sum(a * g, axis=0)", 0,
           "a sign slip in the pre-activation adjoint's derivative-stream term"),
    Mutant("adjoint-laplacian-abar-sign", MATH, "abar = abar - 2.0 * (w2s * mbar)[None, :, :] * ca",
           "abar = abar + 2.0 * (w2s * mbar)[None, :, :] * ca", 0,
           "a sign slip in the derivative streams' adjoint of the Laplacian"),
    Mutant("adjoint-drops-s-l-term", MATH, "zbar = zbar - (w2s * lap + (omega * omega * omega) * c * q) * mbar",
           "zbar = zbar - ((omega * omega * omega) * c * q) * mbar", 0,
           "the pre-activation adjoint of the Laplacian leaves out w^2 sin(w z) l (zero in the first layer)"),
    Mutant("omega-drops-low-half", MATH,
           "return tl.cast(omega_hi, ptr.dtype.element_ty) + tl.cast(omega_lo, ptr.dtype.element_ty)",
           "return tl.cast(omega_hi, ptr.dtype.element_ty)", 0,
           "omega reaches a float64 kernel as its float32 rounding (the low half dropped)"),
    Mutant("sin-cos-reduction-drops-a-part", MATH, "        r = r - k * 0.0019353071693331003\n", "", 0,
           "the fp32 range reduction subtracts 2 pi without its second part"),
    Mutant("load-streams-no-row-mask", MATH, "mask = (sid < S) & (n < N) & (f < F)", "mask = (sid < S) & (f < F)", 0,
           "a stream tile's load reads the rows past N (the next stream's points) instead of zeros"),
    Mutant("store-streams-no-row-mask", MATH, "mask = (sid < S) & (n < N) & (f < F)", "mask = (sid < S) & (f < F)", 1,
           "a stream tile's store writes the rows past N (into the next stream's points)"),
    Mutant("first-layer-a-transposed", MATH, "wcol = tl.load(w0_ptr + f * D + (sid - 1), mask=is_a, other=0.0)",
           "wcol = tl.load(w0_ptr + (sid - 1) * F + f, mask=is_a, other=0.0)", 0,
           "the first layer's derivative streams read W0 (F, D) as if it were (D, F)"),
    Mutant("fwd-bias-on-every-stream", LAYER, "p += tl.where(sid == 0, bias[None, None, :], 0.0)",
           "p += bias[None, None, :]", 0, "the layer forward adds the bias to the derivative and Laplacian streams"),
    Mutant("wgrad-bias-overwrites", LAYER, "bacc += tl.sum(stream_sum(g, sid, 0), axis=0)",
           "bacc = tl.sum(stream_sum(g, sid, 0), axis=0)", 0,
           "the bias gradient keeps only a program's last point block instead of their sum"),
    Mutant("wgrad-keeps-one-split", LAYER, "wgrad = wpart[0] if split == 1 else wpart.sum(0)", "wgrad = wpart[0]", 0,
           "the weight gradient keeps the first split's partial sum over point blocks, not their total"),
    Mutant("cublas-bias-grad-from-grad-stream", LAYER, "g0 = g[0]  # the value stream's adjoints",
           "g0 = g[1]  # the value stream's adjoints", 0,
           "the cuBLAS weight-gradient path sums the bias gradient from the first derivative stream"),
    Mutant("split-epilogue-drops-rest", MATH, "store_streams(rest_ptr, t - head, sid, offs_n, offs_f, S, N, F)",
           "store_streams(rest_ptr, t * 0.0, sid, offs_n, offs_f, S, N, F)", 0,
           "a layer epilogue's 3xTF32 split writes zero remainders (the heads alone reach the GEMMs)"),
    Mutant("tf32-head-truncates", MATH, "((v.to(tl.int32, bitcast=True) + 0x1000) & -8192)",
           "(v.to(tl.int32, bitcast=True) & -8192)", 0, "the TF32 head truncates instead of rounding to nearest"),
    Mutant("grad-rbar-drops-cos", GRAD, "tl.store(d_ptr + doff, d * c, mask=mask)",
           "tl.store(d_ptr + doff, d, mask=mask)", 0,
           "the reverse-mode gradient's adjoint forgets the cosine of the pre-activation"),
    Mutant("grad-zbar-sign", GRAD, "zbar -= tl.load(h_ptr + offs", "zbar += tl.load(h_ptr + offs", 0,
           "a sign slip in the reverse-mode gradient's pre-activation adjoint"),
    Mutant("grad-r-ignores-broadcast-stride", GRAD, "roff = n[:, None] * r_sn + f[None, :]",
           "roff = n[:, None] * F + f[None, :]", 0,
           "the reverse adjoint reads r as contiguous, ignoring its broadcast (zero) point stride"),
    Mutant("render-layer-stride", RENDER, "w_ptr = wh_ptr + layer * W * W", "w_ptr = wh_ptr + layer * W", 0,
           "the fused render steps through the stacked hidden weights with a row's stride, not a matrix's"),
    Mutant("render-hidden-bias-every-stream", RENDER, "p += tl.where(sid == 0, bias[None, None, :], 0.0)",
           "p += bias[None, None, :]", 0, "the fused render adds a hidden layer's bias to every stream"),
)

TARGET = mutations.checkout_target(
    "triton", "tests/test_triton.py (TRITON_INTERPRET=1, CPU)", ["tests/test_triton.py"], HAND_PICKED,
    ["fastsiren.kernels.jet_math", "fastsiren.kernels.jet_layer", "fastsiren.kernels.grad_ops",
     "fastsiren.kernels.render", "fastsiren.jet"], env={"TRITON_INTERPRET": "1"})


def main(argv: list[str] | None = None) -> int:
    return mutations.main(TARGET, argv, __doc__.split("\n\n")[0])


if __name__ == "__main__":
    raise SystemExit(main())
