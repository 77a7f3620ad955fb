"""Fused Triton kernels of fastsiren, installed as ``fastsiren.kernels``.

Importing this package never imports triton; the backend module does, on first use.
"""
