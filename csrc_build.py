"""Ahead-of-time build of the CUDA extension ``fastsiren._C`` (used by setup.py).

    FASTSIREN_BUILD_CUDA=1 pip install --no-build-isolation -e .

``--no-build-isolation`` because the build needs the installed torch (pyproject's isolated
build environment has none); architectures from ``FASTSIREN_CUDA_ARCH`` (default: the
visible GPU's, else ``TORCH_CUDA_ARCH_LIST``, else 80 and 90). Without the flag nothing is
built here and the extension is compiled just in time on first use (fastsiren/cuda_ext.py).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def cuda_extension():
    """``(CUDAExtension, BuildExtension)`` for setup.py: sources, include path and nvcc flags
    are the ones the just-in-time build uses (one definition, in fastsiren.cuda_ext)."""
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CUDAExtension

    from fastsiren.cuda_ext import csrc_dir, cuda_archs, nvcc_flags, source_files

    if torch.version.cuda is None:
        raise RuntimeError(f"FASTSIREN_BUILD_CUDA=1 needs a CUDA build of torch; this one ({torch.__version__}) "
                           "is CPU-only")
    if CUDA_HOME is None:
        raise RuntimeError("FASTSIREN_BUILD_CUDA=1 needs the CUDA toolkit (nvcc): set CUDA_HOME")
    archs = cuda_archs()
    print(f"fastsiren: building the CUDA extension fastsiren._C for sm_{', sm_'.join(archs)}")
    ext = CUDAExtension(
        name="fastsiren._C",
        # setuptools wants paths relative to setup.py
        sources=[str(p.relative_to(ROOT)) for p in source_files()],
        include_dirs=[str(csrc_dir())],
        extra_compile_args={"cxx": ["-O3"], "nvcc": nvcc_flags(archs)},
    )
    return ext, BuildExtension.with_options(use_ninja=True)
