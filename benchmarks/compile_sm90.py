"""Offline sm_90 (H100) compilation of every fastsiren Triton kernel specialization that the
GPU test tier, the benchmarks and the tasks launch -- no GPU needed.

How it works: the launchers in kernels/jet_layer.py and kernels/render.py are driven with CPU
tensors (the CUDA-only check in ``check_tensor`` is bypassed); every ``kernel[grid](...)``
launch is intercepted, bound with triton's own binder for a GPUTarget("cuda", 90, 32) (so
the signature, constexprs, divisibility attributes, num_warps and num_stages are exactly
what the real launch would use), deduplicated and compiled with ``triton.compile`` down to
a cubin with the bundled ptxas. Nothing is executed (outputs stay uninitialised).

Per specialization it reports: compile status (the error on failure), registers per thread,
spill stores/loads and stack frame (from ``ptxas -v``), shared memory (triton's dynamic
smem), num_warps/num_stages, and whether shared memory exceeds the 227 KB per-block limit
or registers x threads exceed the 64K-register file. A GEMM kernel (forward, input or weight
gradient) over the limit is compiled again with one stage fewer until it fits, as
``kernels/jet_layer.launch`` does when the device refuses it; it counts as over the limit
only where one stage does not fit either (the stages it runs at are reported).

Run (fastsiren and fastsiren.kernels are imported from --repo, whatever is installed):

    python benchmarks/compile_sm90.py [--repo DIR] [--only all|layer|render|gpu-tier]
                           [--kernel REGEX] [--where K=V,...] [--set num_stages=1 ...]
                           [--jobs 2] [--json out.json] [--list] [--prewarm]

--only gpu-tier   exactly the launches of tests/test_triton.py's GPU tier (same N); its order-1
                  case (one output in 2-D) takes the reverse-mode gradient (kernels/grad_ops.py)
--where           only specializations whose constexprs match (quotes stripped: HALF=none)
--set             override a launch keyword (num_warps, num_stages, BLOCK_N, ...) to try a fix
--list            record only, print the specializations
--prewarm         on the GPU machine: fill triton's cache (no forced recompiles) in parallel
                  so the JIT launches of the same specializations hit it (use --jobs 16)
COMPILE_SM90_DUMP=dir keeps the TTGIR, PTX and cubin of every specialization.

The script unsets TRITON_INTERPRET. About 6 s per specialization on one core (render
kernels 15-40 s): --only all is ~30 min on 2 cores, a filtered run well under a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import re
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)
# Recompile even when ~/.triton/cache has the kernel: the ptxas log (registers, spills) is only
# produced by a real ptxas run.
if "--prewarm" not in sys.argv:
    os.environ.setdefault("TRITON_ALWAYS_COMPILE", "1")

SMEM_LIMIT = 232448  # 227 KB opt-in max dynamic shared memory per block on sm_90
# the kernels launched through kernels/jet_layer.launch, which retries at fewer pipeline stages
RETRIED_AT_FEWER_STAGES = ("_jet_fwd_kernel", "_jet_dgrad_kernel", "_jet_wgrad_kernel")
REGFILE = 65536


def import_fastsiren(repo: str):
    """Import fastsiren from ``repo`` and its kernels/ folder as fastsiren.kernels (whatever
    is pip-installed), so a patched copy of the tree can be compiled too."""
    repo = os.path.abspath(repo)
    if sys.path[:1] != [repo]:
        sys.path.insert(0, repo)
    import fastsiren
    assert os.path.abspath(fastsiren.__file__).startswith(repo), (fastsiren.__file__, repo)
    if "fastsiren.kernels" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "fastsiren.kernels", os.path.join(repo, "kernels", "__init__.py"),
            submodule_search_locations=[os.path.join(repo, "kernels")])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["fastsiren.kernels"] = mod
        spec.loader.exec_module(mod)
        fastsiren.kernels = mod
    import fastsiren.kernels.jet_layer as jl
    assert os.path.abspath(jl.__file__).startswith(repo), jl.__file__


# ------------------------------------------------------------------ recording launches

LAUNCHES: dict = {}


def _target():
    from triton.backends.compiler import GPUTarget
    return GPUTarget("cuda", 90, 32)


def bind(fn, args, kwargs):
    """signature, constexprs, attrs, options exactly as JITFunction.run would build them."""
    from triton.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature
    backend = make_backend(_target())
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    kw = dict(kwargs)
    kw.setdefault("debug", False)
    bound, spec, opts = binder(*args, **kw)
    options, signature, constexprs, attrs = fn._pack_args(backend, kw, bound, spec, opts)
    return signature, constexprs, attrs, options


class Recorder:
    def __init__(self, fn, label_ref):
        self.fn = fn
        self.label_ref = label_ref

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            sig, cexp, attrs, options = bind(self.fn, args, kwargs)
            names = self.fn.arg_names
            ckey = tuple(sorted((names[k[0]], repr(v)) for k, v in cexp.items()))
            key = (self.fn.__name__, ckey, tuple(sorted(sig.items())), repr(sorted(attrs.items())),
                   options.num_warps, options.num_stages)
            entry = LAUNCHES.setdefault(key, dict(
                kernel=self.fn.__name__, module=self.fn.module, constexprs=dict(ckey),
                num_warps=options.num_warps, num_stages=options.num_stages, grids=set(), labels=set()))
            entry["grids"].add(tuple(grid))
            entry["labels"].add(self.label_ref[0])
        return launch


LABEL = ["?"]
# --set KEY=VALUE: change a launch keyword (num_stages, num_warps, a block size) before
# compiling, to try a fix without editing the kernels.
OVERRIDE: dict = {}


def install_recorders():
    from fastsiren.kernels import grad_ops, jet_layer, jet_math, render
    orig_check = jet_layer.check_tensor

    def check_tensor_cpu_ok(*a, **k):
        # accept CPU tensors: check_tensor allows them only "under the interpreter"; nothing
        # else sees this (launch settings are chosen outside this call, as on the GPU)
        os.environ["TRITON_INTERPRET"] = "1"
        try:
            return orig_check(*a, **k)
        finally:
            os.environ.pop("TRITON_INTERPRET", None)

    jet_layer.check_tensor = check_tensor_cpu_ok
    render.check_tensor = check_tensor_cpu_ok
    grad_ops.check_tensor = check_tensor_cpu_ok
    for mod, name in ((jet_layer, "_jet_fwd_kernel"), (jet_layer, "_jet_dgrad_kernel"),
                      (jet_layer, "_jet_wgrad_kernel"), (jet_layer, "_jet_post_kernel"),
                      (jet_layer, "_jet_adjoint_kernel"), (jet_layer, "_tf32_split_kernel"),
                      (render, "_render_fused_kernel"), (jet_math, "_sin_cos_probe_kernel"),
                      (grad_ops, "_sin_cos_kernel"), (grad_ops, "_reverse_adjoint_kernel"),
                      (grad_ops, "_forward_adjoint_kernel")):
        setattr(mod, name, Recorder(getattr(mod, name), LABEL))


# ------------------------------------------------------------------ scenarios

def make_net(dim, widths, out, last_sine, dtype):
    import torch
    dims = [dim] + widths + [out]
    g = torch.Generator().manual_seed(0)
    ws = [(torch.randn(b, a, generator=g, dtype=dtype) / a ** 0.5).requires_grad_()
          for a, b in zip(dims[:-1], dims[1:])]
    bs = [(0.1 * torch.randn(b, generator=g, dtype=dtype)).requires_grad_() for b in dims[1:]]
    oms = [30.0] + [30.0] * (len(widths) - 1) + [2.0 if last_sine else None]
    return ws, bs, oms


def training(dim, widths, out, last_sine, order, n, precisions=("ieee", "tf32x3", "tf32"), dtype=None,
             wgrad="fused"):
    import torch
    from fastsiren.kernels import backend as tb
    from fastsiren.kernels import config
    dtype = dtype or torch.float32
    ws, bs, oms = make_net(dim, widths, out, last_sine, dtype)
    x = torch.rand(n, dim, dtype=dtype).requires_grad_()
    config.set_wgrad(wgrad)
    for p in precisions:
        LABEL[0] = (f"train D={dim} widths={widths} out={out} last_sine={last_sine} order={order} {p} {dtype}"
                    f"{' wgrad=' + wgrad if wgrad != 'fused' else ''}")
        with config.precision(train=p):
            jet = tb.mlp_jet(x, ws, bs, oms, order)
            outs = [t for t in jet if t is not None]
            torch.autograd.grad(outs, [x, *ws, *bs], [torch.ones_like(t) for t in outs], allow_unused=True)
    config.set_wgrad(None)


def infer(dim, width, hidden, out, last_sine, order, n, precisions=("ieee", "tf32x3", "tf32", "fp16", "bf16")):
    import torch
    from fastsiren.kernels import backend as tb
    from fastsiren.kernels import config
    ws, bs, oms = make_net(dim, [width] * (hidden + 1), out, last_sine, torch.float32)
    x = torch.rand(n, dim)
    from fastsiren import backends
    backends.set_fused_inference(True)  # the fused kernel (the per-layer ones are the training scenarios')
    for p in precisions:
        LABEL[0] = f"render D={dim} width={width} hidden={hidden} out={out} order={order} {p}"
        with config.precision(infer=p), torch.no_grad():
            tb.mlp_infer(x, [w.detach() for w in ws], [b.detach() for b in bs], oms, order)
    backends.set_fused_inference(None)


def gpu_tier():
    """Exactly the launches of tests/test_triton.py's GPU tier (same N, so the same
    divisibility specializations and wgrad ITERS as the real run)."""
    import torch
    from fastsiren.kernels import backend as tb
    from fastsiren.kernels import config, jet_math
    ws, bs, oms = make_net(2, [256] * 4, 1, False, torch.float32)
    x = torch.rand(4099, 2).requires_grad_()

    def step(label: str, order: int, lap_weights=None) -> None:
        """One training step of the 2 -> 256 x4 -> 1 network: its jet and every gradient."""
        LABEL[0] = label
        jet = tb.mlp_jet(x, ws, bs, oms, order, lap_weights)
        outs = [t for t in jet if t is not None]
        torch.autograd.grad(outs, [x, *ws, *bs], [torch.ones_like(t) for t in outs])

    for order in (0, 1, 2):
        for p in ("ieee", "tf32x3", "tf32"):
            with config.precision(train=p):
                step(f"gpu tier jet order={order} {p}", order)
    for mode in config.WGRAD_MODES:  # test_gpu_weight_gradient_modes, at the default precision
        config.set_wgrad(mode)
        for order in (0, 2):
            step(f"gpu tier {mode} wgrad order={order}", order)
        LABEL[0] = f"gpu tier sine layer {mode} wgrad"  # test_gpu_sine_layer_weight_gradient_modes
        lw, lb, _ = make_net(256, [], 256, True, torch.float32)
        xl = torch.rand(4099, 256).requires_grad_()
        jet = tb.mlp_jet(xl, lw, lb, [30.0], 0)
        torch.autograd.grad(jet.value, [xl, *lw, *lb], torch.ones_like(jet.value))
    config.set_wgrad(None)
    config.set_gemm("cublas")  # test_gpu_cublas_gemm_mode
    for order in (0, 2):
        step(f"gpu tier cublas gemm order={order}", order)
    config.set_gemm(None)
    from fastsiren import backends
    for gemm in config.GEMM_MODES:  # test_gpu_weighted_laplacian: the kernels' WEIGHTED variants
        config.set_gemm(gemm)
        step(f"gpu tier weighted laplacian {gemm} gemm", 2, (1.0, -4.0))
    config.set_gemm(None)
    backends.set_fused_inference(True)
    LABEL[0] = "gpu tier weighted laplacian render"
    with torch.no_grad():
        tb.mlp_infer(x.detach(), [w.detach() for w in ws], [b.detach() for b in bs], oms, 2, (1.0, -4.0))
    backends.set_fused_inference(None)
    from fastsiren import jet as fjet
    # test_gpu_cublas_products_3xtf32: the cuBLAS products' operands split by the Triton kernel
    # (on CPU tensors here, so the GPU-only switch is made to apply)
    gpu_only, fjet._tf32x3 = fjet._tf32x3, (lambda a: a.dtype == torch.float32)
    for gemm in config.GEMM_MODES:
        config.set_gemm(gemm)
        for order in (0, 2):
            step(f"gpu tier 3xtf32 {gemm} gemm order={order}", order)
    config.set_gemm(None)
    fjet._tf32x3 = gpu_only
    backends.set_fused_inference(True)  # the GPU tier's fused-render tests turn it on
    ws, bs, _ = make_net(2, [256] * 4, 3, False, torch.float32)
    oms = (30.0, 30.0, 30.0, 30.0, None)
    ws, bs = [w.detach() for w in ws], [b.detach() for b in bs]
    for p in ("ieee", "tf32x3", "tf32", "bf16", "fp16"):
        LABEL[0] = f"gpu tier render order=2 {p}"
        with config.precision(infer=p), torch.no_grad():
            tb.mlp_infer(torch.rand(5000, 2), ws, bs, oms, 2)
    ws, bs, _ = make_net(2, [256] * 4, 1, False, torch.float32)
    LABEL[0] = "gpu tier render 2048^2 in 1M chunks"
    with torch.no_grad():
        tb.mlp_infer(torch.rand(1 << 20, 2), [w.detach() for w in ws], [b.detach() for b in bs], oms, 0)
    backends.set_fused_inference(None)
    LABEL[0] = "gpu tier sin_cos probe"
    jet_math.sin_cos_error(torch.linspace(-3000.0, 3000.0, 1 << 20))


def scenarios(only: str):
    import torch
    from fastsiren.kernels import jet_math
    if only == "gpu-tier":
        return gpu_tier()
    if only in ("all", "layer"):
        # GPU test tier: 2 -> 256 x4 -> 1, N = 4099, orders 0..2, three precisions.
        for order in (0, 1, 2):
            training(2, [256] * 4, 1, False, order, 4099)
        # Benchmarks (fit/poisson suites: 3x256, D=2, out 1 or 3; layer suite: one 256 -> 256 sine layer)
        training(2, [256] * 4, 3, False, 0, 4099, ("ieee",))
        LABEL[0] = "layer suite 256->256 sine layer"
        ws, bs, _ = make_net(256, [], 256, True, torch.float32)
        from fastsiren.kernels import backend as tb
        x = torch.rand(4099, 256).requires_grad_()
        y = tb.sine_linear(x, ws[0], bs[0], 30.0)
        torch.autograd.grad(y, [x, ws[0], bs[0]], torch.ones_like(y))
        # Scaling sweeps: width 64/128/512, D = 1, 3; tasks: D=3 (vfi), widths 32/64 (quick/cpu profiles)
        for w in (64, 128, 512):
            for order in (0, 2):
                training(2, [w] * 4, 1, False, order, 4099, ("ieee",))
        for d in (1, 3):
            for order in (1, 2):
                training(d, [256] * 4, 1, False, order, 4099, ("ieee",))
        training(3, [256] * 4, 3, False, 0, 4099, ("ieee",))
        # triton (fit, poisson-laplacian; weight gradients through cuBLAS, the default since
        # run f9d3b3ae00bf): the epilogue-only post-stream kernel; the sweeps above use "fused"
        for order in (0, 2):
            training(2, [256] * 4, 1, False, order, 4099, ("tf32x3",), wgrad="cublas")
        training(2, [24, 40], 2, True, 2, 37, ("ieee",))
        # float64 on the GPU (CPU-tier widths; reached e.g. by a float64 model with backend=triton)
        training(2, [24, 40], 2, True, 2, 37, ("ieee",), dtype=torch.float64)
        training(2, [256] * 2, 1, False, 2, 4099, ("ieee",), dtype=torch.float64)
    if only in ("all", "render"):
        # GPU test tier: Siren(2, 256, 3, 3), order 2, five precisions; render 2048^2 order 0 out 1.
        infer(2, 256, 3, 3, False, 2, 5000)
        infer(2, 256, 3, 1, False, 0, 5000)
        # Benchmarks/precision/scaling/tasks
        infer(2, 256, 3, 3, False, 0, 5000, ("ieee",))
        infer(2, 256, 3, 1, False, 1, 5000, ("ieee", "tf32"))
        for w in (32, 64, 128, 512):
            infer(2, w, 3, 1, False, 0, 5000, ("ieee", "bf16"))
            infer(2, w, 3, 1, False, 2, 5000, ("ieee", "bf16"))
        infer(3, 256, 3, 3, False, 0, 5000, ("ieee",))
        infer(3, 256, 3, 1, False, 2, 5000, ("ieee",))
        infer(2, 24, 1, 1, True, 2, 37, ("ieee",))
        infer(2, 40, 2, 1, False, 0, 37, ("ieee",))
        LABEL[0] = "sin_cos probe"
        jet_math.sin_cos_error(torch.linspace(-3000, 3000, 1 << 20))


# ------------------------------------------------------------------ compile + resources

def parse_ptxas(log: str) -> dict:
    out = {}
    # The kernel's own entry comes last in the log (after any called device functions).
    regs = re.findall(r"Used (\d+) registers", log)
    out["regs"] = int(regs[-1]) if regs else None
    spills = re.findall(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", log)
    if spills:
        out["stack"], out["spill_st"], out["spill_ld"] = map(int, spills[-1])
    return out


def compile_key(item):
    repo, key, entry, launch_args = item
    import_fastsiren(repo)
    import triton
    from triton.compiler import ASTSource
    mod = importlib.import_module(entry["module"])
    fn = getattr(mod, entry["kernel"])
    if isinstance(fn, Recorder):
        fn = fn.fn
    args, kwargs = launch_args
    kwargs = {**kwargs, **OVERRIDE}
    res = {k: v for k, v in entry.items() if k not in ("grids", "labels")}
    res["labels"] = sorted(entry["labels"])
    res["grids"] = sorted(entry["grids"])[:4]
    try:
        sig, cexp, attrs, options = bind(fn, args, kwargs)
        triton.knobs.nvidia.dump_ptxas_log = True  # triton's own `ptxas -v` log: registers, spills
        retried = False
        while True:
            log = io.StringIO()
            with contextlib.redirect_stdout(log):
                ck = triton.compile(ASTSource(fn, sig, cexp, attrs), target=_target(), options=options.__dict__)
            # kernels/jet_layer.launch runs a GEMM kernel that the device refuses for its shared
            # memory again with one stage fewer: what it will launch is the stages that fit
            if (ck.metadata.shared <= SMEM_LIMIT or entry["kernel"] not in RETRIED_AT_FEWER_STAGES
                    or options.num_stages <= 1 or "num_stages" in OVERRIDE):
                break
            sig, cexp, attrs, options = bind(fn, args, {**kwargs, "num_stages": options.num_stages - 1})
            retried = True
        if retried:
            res["launched_stages"] = options.num_stages
        res["ok"] = True
        res["shared"] = ck.metadata.shared
        dump = os.environ.get("COMPILE_SM90_DUMP")
        if dump:  # keep the IR stages for inspection
            os.makedirs(dump, exist_ok=True)
            tag = f"{entry['kernel']}-{abs(hash(str(key))) % 10**8}"
            for ext in ("ttgir", "ptx"):
                open(os.path.join(dump, f"{tag}.{ext}"), "w").write(ck.asm[ext])
            open(os.path.join(dump, f"{tag}.cubin"), "wb").write(ck.asm["cubin"])
            res["dump"] = os.path.join(dump, tag)
        ptx = ck.asm["ptx"]
        res["sin_approx"] = "sin.approx" in ptx or "cos.approx" in ptx
        res["mma"] = ("wgmma" if "wgmma" in ptx else "mma.sync" if "mma.sync" in ptx else
                      "fma")
        res.update(parse_ptxas(log.getvalue()))
        res["ptxas_log"] = log.getvalue()[-3000:]
        threads = 32 * res["num_warps"]
        res["over_smem"] = res["shared"] > SMEM_LIMIT
        res["over_regs"] = bool(res.get("regs")) and res["regs"] * threads > REGFILE
    except Exception as exc:  # noqa: BLE001
        res["ok"] = False
        res["error"] = "".join(traceback.format_exception_only(type(exc), exc))[-1500:]
    return res


def matches(entry, where: str) -> bool:
    for cond in filter(None, where.split(",")):
        k, v = cond.split("=")
        if entry["constexprs"].get(k, "").strip("'") != v:
            return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]),
                    help="tree to compile (default: the one holding this script)")
    ap.add_argument("--only", default="all", choices=("all", "render", "layer", "gpu-tier"),
                    help="which launches: every kernel, the render or layer kernels, or exactly those of "
                         "tests/test_triton.py's GPU tier")
    ap.add_argument("--prewarm", action="store_true",
                    help="on the GPU machine: compile into triton's cache (no forced recompiles), so the "
                         "JIT launches of the same specializations hit the cache; use --jobs 16")
    ap.add_argument("--jobs", type=int, default=2, help="compiles in parallel")
    ap.add_argument("--json", default=None, help="write the per-specialization results (with the commit, "
                    "triton version and target) to this file")
    ap.add_argument("--kernel", default="", help="regex: compile only kernels whose name matches")
    ap.add_argument("--where", default="", help="e.g. 'W=256,ORDER=2,HALF=none': only matching constexprs")
    ap.add_argument("--set", action="append", default=[], help="override a launch kwarg, e.g. num_stages=1")
    ap.add_argument("--list", action="store_true", help="only list the recorded specializations")
    a = ap.parse_args()
    import_fastsiren(a.repo)
    for kv in a.set:
        k, v = kv.split("=")
        OVERRIDE[k] = v if not v.lstrip("-").isdigit() else int(v)
    # Record the args of one launch per key so the worker can re-bind them (CPU tensors pickle).
    global Recorder
    store = {}
    orig_getitem = Recorder.__getitem__

    def getitem(self, grid):
        inner = orig_getitem(self, grid)

        def launch(*args, **kwargs):
            before = set(LAUNCHES)
            inner(*args, **kwargs)
            for k in set(LAUNCHES) - before:
                import torch
                small = tuple(torch.empty(16, dtype=t.dtype) if isinstance(t, torch.Tensor) else t for t in args)
                store[k] = (small, kwargs)
        return launch

    Recorder.__getitem__ = getitem
    install_recorders()
    scenarios(a.only)
    print(f"{len(LAUNCHES)} distinct specializations", flush=True)
    named = [e for e in LAUNCHES.values() if re.search(a.kernel, e["kernel"])]
    for cond in filter(None, a.where.split(",")):  # a key no such kernel has would select nothing
        k = cond.split("=")[0]
        if not any(k in e["constexprs"] for e in named):
            raise SystemExit(f"--where {cond}: no kernel matching --kernel {a.kernel!r} has a constexpr {k!r}")
    items = [(a.repo, k, e, store[k]) for k, e in LAUNCHES.items()
             if re.search(a.kernel, e["kernel"]) and matches(e, a.where)]
    if a.list:
        for _, _k, e, _ in items:
            print(e["kernel"], e["num_warps"], e["num_stages"], e["constexprs"], sorted(e["labels"])[:1])
        return
    with ProcessPoolExecutor(a.jobs) as ex:
        results = list(ex.map(compile_key, items))
    results.sort(key=lambda r: (r["kernel"], not r["ok"]))
    bad = 0
    for r in results:
        c = r["constexprs"]
        short = {k: c[k] for k in c if k in ("K", "F", "FU", "W", "D", "S", "S_PAD", "ORDER", "BLOCK_N", "BLOCK_F",
                                              "BLOCK_K", "CW", "CHUNKS", "PRECISION", "HALF", "SMALL_K", "FIRST",
                                              "PRO_ADJ", "EPI_ADJ", "H_JET_INPUT", "ITERS", "OUT_PAD", "HIDDEN")}
        head = f"{r['kernel']} w{r['num_warps']} s{r['num_stages']} {short}"
        if OVERRIDE:
            head += f" OVERRIDDEN {OVERRIDE}"
        if not r["ok"]:
            bad += 1
            print("FAIL", head, "\n   ", r["error"].strip().replace("\n", "\n    "), "\n    seen in:", r["labels"][:2])
        else:
            flag = " OVER-SMEM" if r["over_smem"] else ""
            if r.get("launched_stages"):
                flag += f" (over the limit at s{r['num_stages']}: launch() runs it at s{r['launched_stages']})"
            flag += " SPILLS" if r.get("spill_st") else ""
            print(f"ok   {head}\n     regs={r.get('regs')} spill_st={r.get('spill_st')} "
                  f"spill_ld={r.get('spill_ld')} stack={r.get('stack')}"
                  f" smem={r['shared']} mma={r['mma']} sin_approx={r['sin_approx']}{flag}")
    over = sum(1 for r in results if r["ok"] and r["over_smem"])
    print(f"{len(results)} compiled, {bad} failed, {over} over the shared-memory limit")
    if a.json:
        import triton

        try:
            from fastsiren.tasks.common import git_commit
            commit = git_commit(Path(a.repo), length=10)
        except ImportError:  # a tree that is not installed: no benchmarks package
            commit = ""
        doc = {"script": "benchmarks/compile_sm90.py", "argv": sys.argv[1:], "commit": commit,
               "triton": triton.__version__, "target": "cuda sm_90 (GPUTarget('cuda', 90, 32)), no device",
               "smem_limit": SMEM_LIMIT, "results": results}
        Path(a.json).write_text(json.dumps(doc, indent=1, default=str))
    # a failed compile, or shared memory a launch would refuse, fails the run (CI test)
    raise SystemExit(1 if bad or over else 0)


if __name__ == "__main__":
    main()
