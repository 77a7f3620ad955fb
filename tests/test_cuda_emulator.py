"""The CPU emulation of the CUDA runtime (csrc/emulation/) on its own: a small kernel program
compiled with the host compiler shows that the emulation keeps barrier semantics, catches a
missing barrier, sums atomics, lets threads return early, and refuses launches the device
would refuse; built with AddressSanitizer it runs clean and reports an out-of-bounds read of
shared memory. tests/test_cuda_kernels.py runs the real kernels through the emulation; here
that whole tier runs again under AddressSanitizer, and two quick tasks train through the
emulated cuda backend to the torch backend's PSNR."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastsiren import cuda_ext

CXX = cuda_ext.host_compiler()

PROGRAM = r"""
#include <cstdio>
#include "launch.cuh"

// Each thread writes its slot, then reads its neighbour's: correct only with the barrier.
__global__ void rotate(const float* in, float* out, int n, bool barrier) {
  FASTSIREN_DYNAMIC_SHARED(float, buf, 16);
  const int t = threadIdx.x;
  buf[t] = in[blockIdx.x * n + t];
  if (barrier) __syncthreads();
  out[blockIdx.x * n + t] = buf[(t + 1) % n];
}

// Half the threads return before the barrier; the rest must still get through it.
__global__ void early_exit(float* sum, int* phases) {
  __shared__ float part[64];
  const int t = threadIdx.x + 32 * threadIdx.y;
  if (t % 2 == 1) return;
  part[t] = 1.0f;
  __syncthreads();
  if (t == 0) {
    float s = 0.0f;
    for (int i = 0; i < 64; i += 2) s += part[i];
    atomicAdd(sum, s);
    atomicAdd(phases, 1);
  }
}

__global__ void noop() {}

// Reads one float past the end of its dynamic shared memory.
__global__ void past_the_end(float* out, int n) {
  FASTSIREN_DYNAMIC_SHARED(float, buf, 16);
  const int t = threadIdx.x;
  buf[t] = 1.0f;
  __syncthreads();
  out[t] = buf[t + 1 == n ? n : t + 1];
}

int main(int argc, char**) {
  if (argc > 1) {  // "oob": the out-of-bounds read, for the AddressSanitizer build
    float out[32];
    FASTSIREN_LAUNCH(1, 32, 32 * sizeof(float), nullptr, past_the_end)(out, 32);
    std::printf("past_the_end out=%g\n", out[31]);
    return 0;
  }
  const int n = 64, blocks = 3;
  float in[n * blocks], out[n * blocks];
  for (int i = 0; i < n * blocks; ++i) in[i] = static_cast<float>(i);
  for (int with = 1; with >= 0; --with) {
    FASTSIREN_LAUNCH(blocks, n, n * sizeof(float), nullptr, rotate)(in, out, n, with == 1);
    int wrong = 0;
    for (int b = 0; b < blocks; ++b)
      for (int t = 0; t < n; ++t) wrong += out[b * n + t] != in[b * n + (t + 1) % n];
    std::printf("barrier=%d wrong=%d err=%d\n", with, wrong, static_cast<int>(cudaGetLastError()));
  }
  float sum = 0.0f;
  int phases = 0;
  FASTSIREN_LAUNCH(dim3(5, 2), dim3(32, 2), 0, nullptr, early_exit)(&sum, &phases);
  std::printf("early_exit sum=%g blocks=%d err=%d\n", sum, phases, static_cast<int>(cudaGetLastError()));
  FASTSIREN_LAUNCH(1, 1025, 0, nullptr, noop)();
  std::printf("threads1025 err=%d\n", static_cast<int>(cudaGetLastError()));
  FASTSIREN_LAUNCH(1, 32, 64 * 1024, nullptr, rotate)(in, out, 32, true);
  std::printf("smem64k err=%d\n", static_cast<int>(cudaGetLastError()));
  int ok = cudaFuncSetAttribute(rotate, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024);
  FASTSIREN_LAUNCH(1, 32, 64 * 1024, nullptr, rotate)(in, out, 32, true);
  std::printf("smem64k_optin set=%d err=%d\n", ok, static_cast<int>(cudaGetLastError()));
  return 0;
}
"""


def build_program(tmp_path: Path, *flags: str) -> Path:
    src = tmp_path / "emu_check.cpp"
    src.write_text(PROGRAM)
    exe = tmp_path / "emu_check"
    csrc = cuda_ext.csrc_dir()
    build = subprocess.run([CXX, "-std=c++20", "-O1", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas", *flags,
                            "-DFASTSIREN_CUDA_EMULATION", f"-I{csrc / 'emulation'}", f"-I{csrc}", str(src),
                            "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    return exe


@pytest.mark.skipif(CXX is None, reason="no host C++ compiler")
def test_emulated_runtime_semantics(tmp_path):
    exe = build_program(tmp_path)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(" ", 1) for line in run.stdout.strip().splitlines())
    assert lines["barrier=1"] == "wrong=0 err=0"
    # Without the barrier, threads read slots their neighbours have not written yet (NaN poison).
    wrong = int(lines["barrier=0"].split()[0].split("=")[1])
    assert wrong > 0
    assert lines["early_exit"] == "sum=320 blocks=10 err=0"  # 32 live threads x 10 blocks
    assert lines["threads1025"] == "err=9"  # cudaErrorInvalidConfiguration
    assert lines["smem64k"] == "err=1"  # over 48 KiB without the opt-in: cudaErrorInvalidValue
    assert lines["smem64k_optin"] == "set=0 err=0"


@pytest.mark.skipif(CXX is None, reason="no host C++ compiler")
def test_address_sanitizer_sees_through_the_fibers(tmp_path):
    exe = build_program(tmp_path, "-g", "-fsanitize=address", "-fno-omit-frame-pointer")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    clean = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=env)
    if "AddressSanitizer" in clean.stderr and "ERROR" not in clean.stderr:
        pytest.skip(f"AddressSanitizer does not run here: {clean.stderr[:300]}")
    # The fiber switches are announced to ASan: the correct program runs without a report.
    assert clean.returncode == 0 and "ERROR: AddressSanitizer" not in clean.stderr, clean.stderr[-2000:]
    oob = subprocess.run([str(exe), "oob"], capture_output=True, text=True, timeout=120, env=env)
    assert oob.returncode != 0
    assert "ERROR: AddressSanitizer: heap-buffer-overflow" in oob.stderr, oob.stderr[-2000:]
    assert "past_the_end" in oob.stderr  # the report names the kernel


@pytest.mark.skipif(CXX is None or sys.platform != "linux", reason="needs a host C++ compiler with ASan on Linux")
def test_cuda_kernel_tier_under_address_sanitizer():
    """Every emulated check of tests/test_cuda_kernels.py again, with the kernels built with
    AddressSanitizer: any out-of-bounds access to a tensor, to shared memory or to a stack fails it."""
    env = dict(os.environ, **cuda_ext.asan_environment())
    tier = Path(__file__).with_name("test_cuda_kernels.py")
    # -s: a sanitizer report inside a test must reach stderr, not pytest's capture
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-x", "-p", "no:cacheprovider", str(tier),
                          "-k", "emulated"], capture_output=True, text=True, env=env, timeout=1800)
    report = res.stdout[-3000:] + res.stderr[-6000:]
    assert res.returncode == 0, report
    assert "ERROR: AddressSanitizer" not in res.stderr, report
    assert " passed" in res.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(CXX is None, reason="no host C++ compiler")
@pytest.mark.parametrize("task", [["fit"], ["poisson", "--supervision", "laplacian"]])
def test_tasks_train_through_the_emulated_cuda_backend_like_torch(tmp_path, monkeypatch, task):
    """The task layer on backend="cuda" (the path a GPU run's "auto" takes), here emulated:
    the quick fit and the Laplacian-supervised Poisson run reach the torch backend's PSNR."""
    import json

    from fastsiren import cli

    psnr = {}
    for backend in ("torch", "cuda"):
        if backend == "cuda":
            monkeypatch.setenv(cuda_ext.EMULATE_ENV, "1")
        out = tmp_path / backend
        assert cli.main([*task, "--profile", "quick", "--backend", backend, "--out", str(out), "--no-progress"]) == 0
        doc = json.loads((out / "metrics.json").read_text())
        assert doc["backend"] == backend
        rows = doc.get("rows") or [doc]
        psnr[backend] = [r["psnr"] for r in rows if r.get("method", "siren") == "siren"]
        assert psnr[backend], f"no SIREN PSNR in {out / 'metrics.json'}"
    assert psnr["cuda"] == pytest.approx(psnr["torch"], abs=0.02)
