"""The mutation checks: how many deliberate defects a test tier catches.

One engine, three targets, each its own command:

    python -m benchmarks.cuda_mutations     # csrc/ under the CPU emulation  -> results/cuda-mutations.json
    python -m benchmarks.triton_mutations   # kernels/*.py, TRITON_INTERPRET -> results/triton-mutations.json
    python -m benchmarks.torch_mutations    # fastsiren/jet.py (CPU jets)    -> results/torch-mutations.json

each with ``--list`` (the mutants, without running them), ``--only a,b`` (some of them: the
file then says ``"complete": false``), ``--timeout`` (seconds per mutant before it counts as a
hang, which counts as caught) and ``--out``.

A *mutant* is a copy of the target's sources with one deliberate defect: one occurrence of an
exact piece of source text replaced by another (:class:`Mutant`). A Python mutant must still
compile (checked before it runs). The unmutated copy runs first, in every mode of the target,
and must pass; then each mutant runs in a fresh copy, the tier with ``pytest -x`` (it stops at
the first failure), and a mutant is *caught* when the tier fails. A target may have a second
mode that only a miss runs (the CUDA target: AddressSanitizer). A mutant the tier misses is
recorded as missed, with the reason where it is invisible by design (``blind_spot``).

How a copy reaches the tests. The CUDA target copies ``csrc/`` and points the extension's
build at it (``FASTSIREN_CSRC_DIR``). The Python targets copy the checkout (the files
``git ls-files`` lists, tracked and untracked-but-not-ignored, as they are in the working tree)
to a temporary folder, apply the mutant there and run pytest with that folder as the working
directory and first on ``PYTHONPATH`` (no ``.pyc`` written). The package is installed editable
from the real checkout, and setuptools' editable finder maps ``fastsiren.kernels`` (and the
other ``package_dir`` entries of setup.py) to the real folders; it sits after the path finder,
so the copy gets symlinks ``fastsiren/kernels -> ../kernels`` etc. (read from setup.py) and
the path finder serves every ``fastsiren`` module from the copy. Before anything runs, a child
process with the tier's environment imports the target's modules and the check stops unless
every one comes from the copy; the checkout itself is never written.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from fastsiren.tasks import common

from .records import REPO_ROOT, RESULTS_DIR, environment

TARGET_NAMES = ("cuda", "triton", "torch")  # the report's order


def results_file(target: str) -> str:
    """The results file of a target, under benchmarks/results/."""
    return f"{target}-mutations.json"


def command(target: str) -> str:
    return f"python -m benchmarks.{target}_mutations"


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to the target's source folder
    old: str
    new: str
    occurrence: int  # which occurrence of `old` to replace (0-based)
    what: str
    blind_spot: str = ""  # why the tier cannot see it, when that is expected


Outcome = tuple[bool, str, float]  # (passed, summary, seconds)


@dataclass(frozen=True)
class Target:
    name: str
    tier: str  # what runs, in words (into the results file)
    source: Callable[[], Path]  # the folder a mutant's ``file`` is relative to
    mutants: Callable[[Path], list[Mutant]]
    copy: Callable[[Path, Path], None]  # (source, destination): the unmutated copy
    run: Callable[[Path, Path, float, str], Outcome]  # (copy, scratch folder, timeout, mode)
    modes: tuple[str, ...] = ("plain",)  # later modes run only for a mutant the earlier ones missed
    check: Callable[[Path], None] | None = None  # raises unless the tier would test this copy


def _position(text: str, old: str, occurrence: int) -> int:
    """Index of occurrence number ``occurrence`` (0-based) of ``old`` in ``text``."""
    pos = -1
    for _ in range(occurrence + 1):
        pos = text.index(old, pos + 1)
    return pos


def line_of(text: str, old: str, occurrence: int) -> int:
    return text.count("\n", 0, _position(text, old, occurrence)) + 1


def mutated_text(text: str, m: Mutant) -> str:
    """``text`` with mutant ``m`` applied; ValueError if its ``old`` does not occur often enough."""
    if text.count(m.old) <= m.occurrence:
        raise ValueError(f"mutant {m.name}: {m.old!r} does not occur {m.occurrence + 1} time(s) in {m.file}")
    pos = _position(text, m.old, m.occurrence)
    return text[:pos] + m.new + text[pos + len(m.old):]


def apply(src: Path, dst: Path, m: Mutant | None, copy: Callable[[Path, Path], None] = shutil.copytree) -> None:
    """Copy the sources ``src`` to ``dst`` with mutant ``m`` applied (None: unchanged). A
    Python file must still compile (a mutant that is only a SyntaxError tests nothing)."""
    copy(src, dst)
    if m is None:
        return
    path = dst / m.file
    text = mutated_text(path.read_text(), m)
    if path.suffix == ".py":
        compile(text, str(path), "exec")  # SyntaxError: fix the mutant
    path.write_text(text)


def run_pytest(args: Sequence[str], cwd: Path, env: dict[str, str], timeout: float,
               stderr_marker: str | None = None) -> Outcome:
    """``python -m pytest -q -x -p no:cacheprovider *args``: (passed, summary, seconds). The
    summary is the first line of stderr holding ``stderr_marker`` (a sanitizer's report), else
    the first FAILED/ERROR line, else how the process died, else pytest's last line."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *args]
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s (a hang counts as caught)", time.perf_counter() - t0
    lines = res.stdout.strip().splitlines()
    failed = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
    marked = [ln.strip() for ln in res.stderr.splitlines() if stderr_marker and stderr_marker in ln]
    crashed = [f"the test process died of signal {-res.returncode}"] if res.returncode < 0 else []
    summary = (marked or failed or crashed or lines[-1:] or [res.stderr.strip()[-300:]])[0]
    return res.returncode == 0, summary, time.perf_counter() - t0


# ------------------------------------------------------------------ targets on a copy of the checkout


def package_links(root: Path) -> dict[str, str]:
    """The subpackages setup.py installs from other folders (``package_dir``), as links to make
    in a copy of the checkout: ``{"fastsiren/kernels": "../kernels", ...}``."""
    tree = ast.parse((root / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "package_dir":
            dirs = ast.literal_eval(node.value)
            return {pkg.replace(".", "/"): os.path.relpath(folder, os.path.dirname(pkg.replace(".", "/")))
                    for pkg, folder in dirs.items()}
    raise ValueError(f"{root / 'setup.py'} has no package_dir")


def copy_checkout(src: Path, dst: Path) -> None:
    """The files of the checkout ``src`` that git lists (tracked, and untracked but not
    ignored), as they are in the working tree, to ``dst``, with :func:`package_links`."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=src,
                         capture_output=True, check=True).stdout
    for name in sorted({os.fsdecode(n) for n in out.split(b"\0") if n}):
        path = src / name
        if path.is_file() and not path.is_symlink():  # (a file deleted in the working tree is left out)
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dst / name)
    for link, target in package_links(src).items():
        if not (dst / link).exists():
            (dst / link).symlink_to(target, target_is_directory=True)


def checkout_environment(copy: Path, extra: dict[str, str]) -> dict[str, str]:
    """The environment of a tier run in ``copy``: the copy first on PYTHONPATH, no .pyc files."""
    path = os.pathsep.join(p for p in (str(copy), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, PYTHONDONTWRITEBYTECODE="1", **extra)


def check_imports(copy: Path, modules: Sequence[str], extra: dict[str, str]) -> None:
    """Raise unless every module of ``modules``, imported as the tier would (in ``copy``, with its
    environment), comes from ``copy``."""
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    print(importlib.import_module(m).__file__)"
    res = subprocess.run([sys.executable, "-c", code, *modules], cwd=copy, capture_output=True, text=True,
                         env=checkout_environment(copy, extra), timeout=300)
    if res.returncode != 0:
        raise RuntimeError(f"importing {list(modules)} from the copy failed:\n{res.stderr[-2000:]}")
    where = res.stdout.split()
    outside = [f"{m} from {f}" for m, f in zip(modules, where) if not Path(f).absolute().is_relative_to(copy)]
    if outside:
        raise RuntimeError(f"the copy's tests would not test the copy: {outside}")


def checkout_target(name: str, tier: str, pytest_args: Sequence[str], hand_picked: Sequence[Mutant],
                    modules: Sequence[str], env: dict[str, str] | None = None) -> Target:
    """A target whose tier is ``pytest *pytest_args`` in a mutated copy of the checkout
    (:func:`copy_checkout`); ``modules``: what must be imported from the copy."""
    extra = dict(env or {})
    return Target(
        name=name, tier=tier, source=lambda: REPO_ROOT, mutants=lambda src: list(hand_picked), copy=copy_checkout,
        run=lambda copy, scratch, timeout, mode: run_pytest(pytest_args, copy, checkout_environment(copy, extra),
                                                            timeout),
        check=lambda copy: check_imports(copy, modules, extra))


# ------------------------------------------------------------------ the command


def main(target: Target, argv: list[str] | None = None, description: str = "") -> int:
    name = target.name
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}_mutations",
                                description=description or f"The mutation check of the {name} target.")
    p.add_argument("--only", default="", help="comma-separated mutant names (default: all)")
    p.add_argument("--list", action="store_true", help="print the mutants and exit")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant before it counts as a hang")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / results_file(name),
                   help="results file (default: %(default)s)")
    a = p.parse_args(argv)
    src = target.source()
    todo = target.mutants(src)
    if a.list:
        for m in todo:
            print(f"{m.name:40s} {m.what}")
        return 0
    if a.only:
        names = {m.name for m in todo}
        wanted = [n.strip() for n in a.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - names)
        if unknown:
            p.error(f"--only: unknown mutant(s) {unknown}; see --list")
        todo = [m for m in todo if m.name in wanted]
    if not (REPO_ROOT / "tests").is_dir():
        p.error(f"the test tiers under {REPO_ROOT / 'tests'} are not here: run this from a checkout of the repository")

    rows = []
    with tempfile.TemporaryDirectory(prefix=f"fastsiren-{name}-mutants-") as tmp:
        tmp = Path(tmp)
        base = tmp / "base"
        apply(src, base, None, target.copy)
        if target.check is not None:
            target.check(base)
        for mode in target.modes:
            ok, summary, secs = target.run(base, tmp, a.timeout, mode)
            print(f"{'unmutated, ' + mode:40s} {'passes' if ok else 'FAILS'} ({secs:.0f} s) {summary}", flush=True)
            if not ok:
                print(f"the unmutated sources fail the tier ({mode}): fix that first", file=sys.stderr)
                return 1
        shutil.rmtree(base, ignore_errors=True)
        for i, m in enumerate(todo):
            work = tmp / f"m{i}"
            apply(src, work, m, target.copy)
            caught_in, summary, secs = None, "", 0.0
            for mode in target.modes:  # a later mode only matters for a miss
                passed, summary, mode_secs = target.run(work, tmp, a.timeout, mode)
                secs += mode_secs
                if not passed:
                    caught_in = mode
                    break
            rows.append({"name": m.name, "file": m.file, "what": m.what,
                         "caught_plain": caught_in == target.modes[0], "caught": caught_in is not None,
                         "blind_spot": m.blind_spot, "evidence": summary, "seconds": round(secs, 1)})
            verdict = ("MISSED" if caught_in is None else
                       "caught" if caught_in == target.modes[0] else f"caught by {caught_in}")
            print(f"{m.name:40s} {verdict} ({secs:.0f} s) {summary}", flush=True)
            shutil.rmtree(work, ignore_errors=True)
    env = environment(torch.device("cpu"))
    doc = {"script": f"benchmarks/{name}_mutations.py", "target": name,
           **{k: env[k] for k in ("date", "commit", "torch", "triton", "python")},
           "tier": target.tier, "complete": not a.only, "caught_plain": sum(r["caught_plain"] for r in rows),
           "caught": sum(r["caught"] for r in rows), "mutants": len(rows), "rows": rows}
    common.write_json(a.out, doc)
    later = f", {doc['caught']} with {', '.join(target.modes[1:])}" if len(target.modes) > 1 else ""
    print(f"caught {doc['caught_plain']} of {doc['mutants']} {target.modes[0]}{later} -> {a.out}")
    return 0
