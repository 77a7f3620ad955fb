"""Fused Triton kernels of fastsiren, installed as ``fastsiren.kernels``.

Importing this package never imports triton; the backend module does, on first use.

Modules: ``jet_math`` (device helpers: sin/cos with range reduction, the jet epilogue and
its adjoint on (streams, points, features) tiles), ``jet_layer`` (per-layer forward, input-
and weight-gradient kernels over the stacked streams, and the network ``autograd.Function``),
``render`` (the fully fused multi-layer inference kernel), ``config`` (launch configurations
and the precision option), ``backend`` (the registry's "triton" backend).
"""
