"""How much the float64 tests of the torch backend can see: a mutation check.

    python -m benchmarks.torch_mutations           # writes benchmarks/results/torch-mutations.json
    python -m benchmarks.torch_mutations --list    # the mutants, without running them

(one target of the engine in benchmarks/mutations.py: how a mutated copy reaches the tests is
said there). Each mutant is a copy of the checkout with one hand-picked defect in
``fastsiren/jet.py``, the torch backend's CPU jets: the forward streams' epilogue (its module docstring),
its adjoint, the bias and weight gradients and their sums over point blocks, the reverse-mode
gradient's steps (``GradOps``), the weighted Laplacian and the 3xTF32 products. The tier is the
tests that hold the torch backend to the reference in float64 (:data:`TESTS`), until the first
failure.
"""

from __future__ import annotations

from . import mutations
from .mutations import Mutant

MUTATIONS_FILE = mutations.results_file("torch")
JET = "fastsiren/jet.py"
TESTS = (
    "tests/test_core.py::test_torch_jet_matches_reference",
    "tests/test_core.py::test_gradcheck_torch_jet_function",
    "tests/test_laplacian_weights.py::test_torch_weighted_laplacian_matches_reference",
    "tests/test_core.py::test_tf32_split_is_exact_with_a_tf32_head",
    "tests/test_core.py::test_tf32x3_product_recovers_float32_accuracy",
    "tests/test_core.py::test_torch_backend_tf32x3_training_matches_float32",
)

HAND_PICKED = (
    Mutant("epilogue-grad-sin-for-cos", JET, "torch.mul(a, c, out=h[1:1 + dim])",
           "torch.mul(a, h[0], out=h[1:1 + dim])", 0,
           "the derivative streams' epilogue multiplies by sin(w z) instead of cos(w z)"),
    Mutant("epilogue-drops-q-term", JET, "            lap.addcmul_(h[0], q, value=-1.0)\n", "", 0,
           "a hidden layer's Laplacian epilogue leaves out -w^2 sin(w z) sum_k a_k^2"),
    Mutant("first-layer-laplacian-sign", JET, "torch.mul(h[0], q, out=lap).neg_()", "torch.mul(h[0], q, out=lap)", 0,
           "the first layer's Laplacian (-w^2 sin(w z) q) loses its sign"),
    Mutant("epilogue-unweighted-q", JET, "q = (a * a).sum(0) if lap_w is None else (a * a).mul_(lap_w).sum(0)",
           "q = (a * a).sum(0)", 0, "the epilogue's q ignores the Laplacian's weights"),
    Mutant("bias-on-every-stream", JET, "            p[0].add_(bs)\n", "            p.add_(bs)\n", 0,
           "a hidden layer of a jet adds its bias to the derivative and Laplacian streams"),
    Mutant("lap-weights-reversed", JET, "ctx.lap_weights, dtype=x.dtype, device=x.device).view(-1, 1, 1)",
           "ctx.lap_weights, dtype=x.dtype, device=x.device).flip(0).view(-1, 1, 1)", 0,
           "the Laplacian's weights are applied to the dimensions in reverse order"),
    Mutant("adjoint-zbar-sign", JET, "pbar[0].addcmul_(s, (a * big).sum(0), value=-1.0)",
           "pbar[0].addcmul_(s, (a * big).sum(0), value=1.0)", 0,
           "a sign slip in the pre-activation adjoint's derivative-stream term"),
    Mutant("adjoint-abar-factor", JET, "s * mbar, value=-2.0)", "s * mbar, value=-1.0)", 0,
           "the derivative streams' adjoint of the Laplacian loses its factor 2"),
    Mutant("adjoint-unweighted-abar", JET, "a if lap_w is None else a * lap_w, s * mbar", "a, s * mbar", 0,
           "the derivative streams' adjoint of the Laplacian ignores its weights"),
    Mutant("adjoint-drops-c-q-term", JET, "            coef.addcmul_(c, layer.q)\n", "", 0,
           "a hidden layer's pre-activation adjoint of the Laplacian leaves out w^3 cos(w z) q"),
    Mutant("order0-adjoint-sin", JET, 'trig("cos", layer.p[0], pbar[0])', 'trig("sin", layer.p[0], pbar[0])', 0,
           "the order-0 adjoint multiplies by sin(w z) instead of cos(w z)"),
    Mutant("first-bias-gradient-missing", JET, "        if need_b[i]:\n", "        if need_b[i] and i > 0:\n", 0,
           "the first layer of a jet gets no bias gradient"),
    Mutant("first-layer-wgrad-drops-abar", JET, "wg += pbar[1:1 + dim].sum(1).t()", "pass", 0,
           "the first layer's weight gradient forgets the derivative streams' adjoint"),
    Mutant("bias-grad-not-unscaled", JET, "                b_grads[i].mul_(scale)\n",
           "                b_grads[i].mul_(1.0)\n", 0,
           "the jet's bias gradients stay those of the omega-scaled bias"),
    Mutant("blocks-overwrite-sums", JET, "acc[i] = t if acc[i] is None else acc[i].add_(t)", "acc[i] = t", 0,
           "gradients summed over point blocks keep the last block's term only"),
    Mutant("shares-drop-a-thread", JET, "for part in parts[1:]:", "for part in parts[2:]:", 0,
           "the sum of gradient terms over threads' shares of the point blocks leaves out the second share"),
    Mutant("point-blocks-drop-tail-point", JET, "slice(i, min(i + step, n_pts))", "slice(i, min(i + step, n_pts - 1))",
           0, "the last point block leaves out the last point"),
    Mutant("grad-forward-drops-cos", JET, "r = rows_mm(operand(r if cs[i] is None else r * cs[i], ops.split), wss[i])",
           "r = rows_mm(operand(r, ops.split), wss[i])", 0,
           "the reverse-mode gradient's reverse pass forgets the cosine of the pre-activation"),
    Mutant("grad-rbar-drops-cos", JET, "return t, dbar.mul_(c)", "return t, dbar", 0,
           "GradOps.reverse_adjoint: the adjoint of r forgets the cosine"),
    Mutant("grad-zbar-sign", JET, "zbar.addcmul_(h, t, value=-1.0)", "zbar.addcmul_(h, t, value=1.0)", 0,
           "GradOps.forward_adjoint: a sign slip in the pre-activation adjoint"),
    Mutant("grad-drops-second-order-term", JET, "t_extra[i], rbar = ops.reverse_adjoint(rs[i], dbar, cs[i])",
           "_, rbar = ops.reverse_adjoint(rs[i], dbar, cs[i])", 0,
           "the reverse-mode gradient's backward drops -sin(z) sum_o r_o dbar_o from the pre-activation adjoint"),
    Mutant("tf32-split-truncates", JET, "((t.view(torch.int32) + _TF32_HALF_ULP) & _TF32_MASK)",
           "(t.view(torch.int32) & _TF32_MASK)", 0, "the TF32 head truncates instead of rounding to nearest"),
    Mutant("tf32x3-drops-a-term", JET, "        r.addmm_(ah, bl)\n", "", 0, "a 3xTF32 product leaves out head x rest"),
)

TARGET = mutations.checkout_target(
    "torch", "float64 torch-vs-reference tests: " + ", ".join(t.split("::")[1] for t in TESTS), TESTS, HAND_PICKED,
    ["fastsiren.jet", "fastsiren.reference"])


def main(argv: list[str] | None = None) -> int:
    return mutations.main(TARGET, argv, __doc__.split("\n\n")[0])


if __name__ == "__main__":
    raise SystemExit(main())
