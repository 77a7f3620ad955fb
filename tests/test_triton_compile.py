"""The Triton kernels compile for an H100 (sm_90) without a GPU.

The CPU tier runs the kernels under the interpreter, which checks their numbers but not
what a real compile checks: tl.dot shapes, shared memory, registers. This test runs
``benchmarks/compile_sm90.py`` (triton's own binder and its bundled ptxas, no device) on
the GPU tier's order-2 training kernels at width 256 in the default precision (tf32x3, plain
and weighted), on the fused render kernel (which asked for 557 KB of shared memory before
``num_stages=1``) in float32, fp16 and weighted, and on the elementwise kernels of the
reverse-mode gradient, the cuBLAS modes and the 3xTF32 split: a compile failure, or a launch
the hardware would refuse at the stages the launcher falls back to, fails here; each row must
compile at least ``least`` specializations (a filter that selects nothing fails).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kernel,where,least", [
    # the training GEMM kernels at order 2 and the default precision (tf32x3): plain and weighted
    # Laplacian, the cuBLAS GEMM mode's prologue adjoint, the first layer's raw-input jet
    ("_jet_(fwd|dgrad|wgrad)_kernel", "ORDER=2,PRECISION=tf32x3", 20),
    # the sine layer's fused weight gradient that wants 256 KiB at three stages: it passes only
    # because jet_layer.launch (and so this check) runs it at two
    ("_jet_wgrad_kernel", "ORDER=0,PRO_ADJ=True", 1),
    ("_render_fused_kernel", "ORDER=0,PRECISION=tf32x3,HALF=none,W=256", 1),  # the fused render (+fused)
    ("_render_fused_kernel", "ORDER=2,HALF=fp16", 1),  # its fp16 stream scaling
    ("_render_fused_kernel", "ORDER=2,WEIGHTED=True", 1),
    # the reverse-mode gradient's elementwise kernels, the cuBLAS modes' epilogue and adjoint
    # kernels, and the 3xTF32 operand split
    ("_sin_cos_kernel|_reverse_adjoint_kernel|_forward_adjoint_kernel", "", 4),
    ("_jet_post_kernel|_jet_adjoint_kernel|_tf32_split_kernel", "", 10),
])
def test_kernels_compile_for_sm90(kernel, where, least):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compile_sm90.py"), "--repo", str(ROOT),
                           "--only", "gpu-tier", "--kernel", kernel, "--where", where, "--jobs", "2"],
                          capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    out = proc.stdout + proc.stderr
    if "ptxas" in out and "not found" in out.lower():
        pytest.skip("triton's bundled ptxas is not available here")
    assert proc.returncode == 0, out[-3000:]
    done = re.search(r"(\d+) compiled, 0 failed, 0 over", out)
    assert done and int(done.group(1)) >= least, out[-2000:]
