"""Fused Triton kernels of fastsiren, installed as ``fastsiren.kernels``.

Importing this package never imports triton; the backend module does, on first use.

Modules: ``jet_math`` (device helpers: sin/cos with range reduction, the jet epilogue and
its adjoint on (streams, points, features) tiles), ``jet_layer`` (per-layer forward, input-
and weight-gradient kernels over the stacked streams, and the network ``autograd.Function``),
``grad_ops`` (the fused elementwise steps of the reverse-mode gradient, whose GEMMs are
cuBLAS), ``render`` (the fully fused multi-layer inference kernel), ``config`` (launch
configurations, the precision option and the weight-gradient mode), ``backend`` (the
registry's "triton" backend).
"""
