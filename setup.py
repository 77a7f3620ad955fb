"""Install fastsiren. ``kernels/`` installs as ``fastsiren.kernels``.

The CUDA extension is optional: it is built ahead of time only with
``FASTSIREN_BUILD_CUDA=1 pip install -e .`` (see ``csrc/``), otherwise just in time on
first use of the "cuda" backend. Installing never needs a GPU or a compiler.
"""

import os

from setuptools import setup

cmdclass, ext_modules = {}, []
if os.environ.get("FASTSIREN_BUILD_CUDA") == "1":
    import sys

    # setuptools.build_meta does not put the project on sys.path (only its legacy backend does)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from csrc_build import cuda_extension  # noqa: E402  (only with the flag: needs torch + nvcc)

    ext, build_ext = cuda_extension()
    ext_modules, cmdclass = [ext], {"build_ext": build_ext}

setup(
    name="fastsiren",
    version="0.1.0",
    description="Fused Triton/CUDA kernels and experiments for SIREN (sine-activation MLPs)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=["fastsiren", "fastsiren.tasks", "fastsiren.report", "fastsiren.kernels", "fastsiren.benchmarks",
              "fastsiren.csrc"],
    # csrc/ ships as fastsiren/csrc (data only), where fastsiren.cuda_ext.csrc_dir() finds it
    package_dir={"fastsiren.kernels": "kernels", "fastsiren.benchmarks": "benchmarks", "fastsiren.csrc": "csrc"},
    package_data={"fastsiren": ["weights/*"], "fastsiren.report": ["*.typ"],
                  "fastsiren.csrc": ["*.cu", "*.cuh", "*.h", "*.cpp", "emulation/*.h", "README.md"]},
    include_package_data=True,
    install_requires=[
        "torch>=2.11",
        "triton>=3.6; sys_platform == 'linux'",
        "numpy",
        "scipy",
        "scikit-image",
        "scikit-video",
        "av",
        "tqdm",
        "matplotlib",
        "typst",
    ],
    extras_require={"test": ["pytest", "ruff", "triton==3.6.0; sys_platform == 'linux'"]},
    entry_points={"console_scripts": ["fastsiren=fastsiren.cli:main"]},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
