"""CI without a GPU: compile every CUDA source of csrc/ so a syntax or type error never lands.

Each kernel file (*.cu, torch-free by design) is compiled with this machine's nvcc for
sm_80 and sm_90 (``-c`` into a temporary folder); the torch bindings (*.cpp) are checked by
the host compiler against the installed torch headers (``-fsyntax-only``, C++20 like
torch.utils.cpp_extension). All compiles start at once in a module fixture: on 2 cores
they overlap nvcc's front end with g++'s. Skipped with the reason where nvcc is absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from fastsiren import cuda_ext

CSRC = cuda_ext.csrc_dir()
ARCHS = ("80", "90")
KERNELS = sorted(CSRC.glob("*.cu"))
BINDINGS = sorted(CSRC.glob("*.cpp"))


NVCC = cuda_ext.find_nvcc()
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found (no CUDA toolkit): CUDA sources not compiled")


def _cuda_include() -> str:
    """The toolkit's include folder (nvcc may be a wrapper script outside the toolkit)."""
    import os

    cands = [Path(os.environ[v], "include") for v in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(v)]
    cands += [Path(NVCC).resolve().parent.parent / "include", Path("/usr/local/cuda/include")]
    for cand in cands:
        if (cand / "cuda_runtime.h").is_file():
            return str(cand)
    pytest.skip(f"cuda_runtime.h not found in {[str(c) for c in cands]}: set CUDA_HOME")


def _host_shim(tmp: Path) -> list[str]:
    """CPU-only torch wheels ship c10/cuda but not its generated cuda_cmake_macros.h; supply
    the one line it holds in CUDA wheels so the bindings can be checked here too."""
    from torch.utils.cpp_extension import include_paths

    if any(Path(p, "c10/cuda/impl/cuda_cmake_macros.h").is_file() for p in include_paths()):
        return []
    shim = tmp / "shim" / "c10" / "cuda" / "impl"
    shim.mkdir(parents=True)
    (shim / "cuda_cmake_macros.h").write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
    return ["-isystem", str(tmp / "shim")]


def _commands(tmp: Path) -> dict[str, list[str]]:
    from torch.utils.cpp_extension import include_paths

    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in ARCHS]
    cmds = {}
    for cu in KERNELS:
        cmds[cu.name] = [NVCC, "-c", "-std=c++17", "-O3", "-Werror", "all-warnings", *gencode,
                         f"-I{CSRC}", str(cu), "-o", str(tmp / (cu.stem + ".o"))]
    cxx = shutil.which("c++") or shutil.which("g++") or sysconfig.get_config_var("CXX") or "c++"
    cuda_include = _cuda_include()
    torch_inc = [arg for p in include_paths() for arg in ("-isystem", p)]
    for cpp in BINDINGS:
        cmds[cpp.name] = [cxx, "-std=c++20", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", f"-I{CSRC}",
                          *torch_inc, *_host_shim(tmp), "-isystem", cuda_include,
                          f"-I{sysconfig.get_paths()['include']}", str(cpp)]
    return cmds


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("cuda_build")
    procs = {name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name, cmd in _commands(tmp).items()}
    results = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=600)
        results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, "")
    return results


def test_sources_present():
    assert {p.name for p in KERNELS} >= {"first_layer.cu", "sine_layer.cu", "render.cu"}
    assert [p.name for p in BINDINGS] == ["bindings.cpp"]


@needs_nvcc
@pytest.mark.parametrize("name", [p.name for p in KERNELS])
def test_kernel_compiles_for_sm80_sm90(compiled, name):
    res = compiled[name]
    assert res.returncode == 0, f"nvcc failed on csrc/{name}:\n{res.stdout[-6000:]}"


@needs_nvcc
@pytest.mark.skipif(sys.platform != "linux", reason="host syntax check written for gcc/clang on Linux")
@pytest.mark.parametrize("name", [p.name for p in BINDINGS])
def test_bindings_compile_with_host_compiler(compiled, name):
    res = compiled[name]
    assert res.returncode == 0, f"host compiler failed on csrc/{name}:\n{res.stdout[-6000:]}"


def test_python_constants_match_header():
    header = (CSRC / "fastsiren.h").read_text()
    m = re.search(r"constexpr int kMaxJetDim = (\d+);", header)
    assert m is not None, "kMaxJetDim not found in csrc/fastsiren.h"
    assert int(m.group(1)) == cuda_ext.MAX_JET_DIM


def test_every_op_has_a_fake_and_a_cuda_impl():
    src = (CSRC / "bindings.cpp").read_text()
    defined = re.findall(r'm\.def\("(\w+)\(', src)
    implemented = re.findall(r'm\.impl\("(\w+)"', src)
    assert sorted(defined) == sorted(cuda_ext.OP_NAMES) == sorted(set(implemented))
    assert f"TORCH_LIBRARY({cuda_ext.OPS_NAMESPACE}, m)" in src
    assert f"TORCH_LIBRARY_IMPL({cuda_ext.OPS_NAMESPACE}, CUDA, m)" in src
    fakes = (Path(cuda_ext.__file__)).read_text()
    for op in defined:
        assert f'register_fake(f"{{ns}}::{op}")' in fakes, f"no fake implementation for {op}"


def test_arch_parsing():
    assert cuda_ext.parse_arch_list("80;90") == ["80", "90"]
    assert cuda_ext.parse_arch_list("8.0, 9.0") == ["80", "90"]
    assert cuda_ext.parse_arch_list("sm_90a") == ["90a"]
    with pytest.raises(ValueError, match="FASTSIREN_CUDA_ARCH"):
        cuda_ext.parse_arch_list("hopper")
    flags = cuda_ext.nvcc_flags(["80", "90"])
    assert "-gencode=arch=compute_80,code=sm_80" in flags
    assert "-gencode=arch=compute_90,code=compute_90" in flags


def test_import_is_lazy_and_reason_is_clear_without_gpu():
    import torch

    assert cuda_ext._states[""]["loaded"] is False or torch.cuda.is_available()
    if not torch.cuda.is_available():
        assert cuda_ext.unavailable_reason() == "no CUDA device is visible to torch"
        from fastsiren import backends

        with pytest.raises(RuntimeError, match="cuda.*no CUDA device|needs CUDA tensors"):
            backends.resolve("cuda", "cpu")


def test_emulation_switch_and_source_override(monkeypatch, tmp_path):
    from fastsiren import backends

    monkeypatch.delenv(cuda_ext.EMULATE_ENV, raising=False)
    assert not cuda_ext.emulating() and cuda_ext.namespace() == cuda_ext.OPS_NAMESPACE
    monkeypatch.setenv(cuda_ext.EMULATE_ENV, "1")
    assert cuda_ext.emulating() and cuda_ext.namespace() == cuda_ext.EMU_NAMESPACE
    # The emulation takes CPU tensors only, and never becomes the automatic choice.
    assert "needs CPU tensors" in backends.unavailable_reason("cuda", "meta")
    assert backends.resolve("auto", "cpu") == "torch"
    monkeypatch.setenv(cuda_ext.CSRC_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="FASTSIREN_CSRC_DIR.*holds no bindings.cpp"):
        cuda_ext.csrc_dir()


def test_a_failed_build_is_the_reason_with_one_warning(monkeypatch, tmp_path):
    """Issue 4's rule, on the emulated build (the only one a CPU machine can attempt): a build
    that fails is remembered, reported as the reason the backend is unavailable, warned about
    once, and the registry refuses the backend by name with that reason."""
    from fastsiren import backends

    monkeypatch.setenv(cuda_ext.EMULATE_ENV, "1")
    monkeypatch.setenv(cuda_ext.CACHE_ENV, str(tmp_path / "cache"))  # nothing cached: it must build
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setitem(cuda_ext._states, "1", cuda_ext.fresh_state())
    with pytest.warns(UserWarning, match="could not be built or loaded"):
        reason = cuda_ext.unavailable_reason()
    assert "CPU emulation of the fastsiren CUDA extension could not be built" in reason
    assert "no-such-compiler" in reason
    assert cuda_ext.unavailable_reason() == reason  # remembered, not rebuilt, no second warning
    with pytest.raises(RuntimeError, match="backend 'cuda' cannot run on cpu.*could not be built"):
        backends.resolve("cuda", "cpu")


def _call_args(src: str, start: int) -> list[str]:
    """Top-level comma-separated arguments of the call whose '(' is at ``start``."""
    depth, args, cur, i, quote = 0, [], "", start + 1, False
    while i < len(src):
        ch = src[i]
        if quote:
            cur += ch
            if ch == "\\":
                cur += src[i + 1]
                i += 1
            elif ch == '"':
                quote = False
        elif ch == '"':
            quote, cur = True, cur + ch
        elif ch in "([{":
            depth, cur = depth + 1, cur + ch
        elif ch in ")]}":
            if depth == 0:
                return args + [cur.strip()]
            depth, cur = depth - 1, cur + ch
        elif ch == "," and depth == 0:
            args, cur = args + [cur.strip()], ""
        else:
            cur += ch
        i += 1
    raise AssertionError("unbalanced call")


def test_error_messages_stream_strings_only():
    """A number streamed into a TORCH_CHECK message segfaulted in the JIT-built extension on an
    H200 (benchmarks/results/gpu-check/2026-11-28-h200-2): every message piece is a string."""
    src = (cuda_ext.csrc_dir() / "bindings.cpp").read_text()
    src = re.sub(r"//[^\n]*", "", src)
    allowed = re.compile(r'^("([^"\\]|\\.)*"\s*)+$|^(num|num_f|shape_str|c10::toString|cudaGetErrorString)\(.*\)$'
                         r"|\.str\(\)$|^(name|ref|wi|bi|what|kDeviceWanted)$", re.S)
    checks = [m.start() + len("TORCH_CHECK") for m in re.finditer(r"\bTORCH_CHECK\(", src)]
    assert len(checks) > 10
    bad = [a for pos in checks for a in _call_args(src, pos)[1:] if not allowed.search(a)]
    assert not bad, f"message pieces that are not strings: {bad}"


def test_cuda_registers_parses_ptxas_and_pairs_weighted_kernels():
    """benchmarks/cuda_registers.py: each entry function of a ptxas -v log with its resources
    (both "Used" line formats; a called function's properties skipped), LapWeights
    instantiations paired with their UnitWeights twins; its committed sm_90 file covers every
    kernel source and records the shared memory of the kernels that reduce through it."""
    import json

    from fastsiren.benchmarks import cuda_registers

    log = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_Z1kIN9fastsiren10LapWeightsIfEEEvT_' for 'sm_90'
ptxas info    : Function properties for _Z1kIN9fastsiren10LapWeightsIfEEEvT_
    48 bytes stack frame, 40 bytes spill stores, 36 bytes spill loads
ptxas info    : Used 128 registers, used 1 barriers, 8 bytes cumulative stack size, 1056 bytes smem, 400 bytes cmem[0]
ptxas info    : Compiling entry function '_Z1kIN9fastsiren11UnitWeightsIfEEEvT_' for 'sm_90'
ptxas info    : Function properties for _Z1kIN9fastsiren11UnitWeightsIfEEEvT_
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Function properties for __internal_trig_reduction_slowpathd
    40 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 96 registers, 1056 bytes smem, 368 bytes cmem[0]
ptxas info    : Compiling entry function '_Z5plainPf' for 'sm_90'
ptxas info    : Function properties for _Z5plainPf
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 30 registers, used 0 barriers, 380 bytes cmem[0]
"""
    rows = cuda_registers.parse_ptxas(log)
    assert [(r["regs"], r["smem"], r["stack"], r["cum_stack"], r["spill_st"], r["spill_ld"]) for r in rows] == [
        (128, 1056, 48, 8, 40, 36), (96, 1056, 0, None, 0, 0), (30, 0, 0, None, 0, 0)]
    names = ["void k<fastsiren::LapWeights<float> >(fastsiren::LapWeights<float>)",
             "void k<fastsiren::UnitWeights<float> >(fastsiren::UnitWeights<float>)", "plain(float*)"]
    for r, name in zip(rows, names):
        r["file"], r["kernel"] = "x.cu", name
    (pair,) = cuda_registers.pair_weighted(rows)
    assert (pair["kernel"], pair["regs_unit"], pair["regs_weighted"], pair["regs_delta"],
            pair["spill_st_weighted"]) == (names[1], 96, 128, 32, 40)
    doc = json.loads((Path(__file__).resolve().parents[1] / "benchmarks/results/cuda-registers-sm90.json").read_text())
    assert {r["file"] for r in doc["rows"]} == {cu.name for cu in KERNELS}
    assert doc["weighted_vs_unit"] and doc["arch"] == "sm_90"
    reducing = [r for r in doc["rows"] if "sine_bwd_kernel" in r["kernel"] or "first_bwd_kernel" in r["kernel"]]
    assert reducing and all(r["smem"] > 0 for r in reducing)  # their block reduction's __shared__ array
