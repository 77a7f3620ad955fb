"""What every task shares: run folders, atomic files, checkpoints with resume, the training
loop with a progress bar, environment records, results documents and PNG figures.

A run folder holds ``config.json`` (written first), ``checkpoint.pt`` (atomically replaced
every ``checkpoint_every`` steps and on Ctrl-C), or for the tasks whose methods are fits of
seconds to minutes (sr, vfi) ``parts/`` (each finished method's output, :class:`Parts`),
figures, and ``metrics.json`` written *last*: a folder without ``metrics.json`` is an
unfinished run, never a finished one. The results tables that run for many minutes (the SR and
VFI tables, the VFI dev run) rewrite their results file after every image or triplet, and
``--resume`` keeps its rows (:func:`resumed_rows`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import glob
import json
import math
import numbers
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

PROFILES = ("quick", "cpu", "paper")
# Steps between the checkpoints of a training run (fit's --checkpoint-every; the fits of the
# Poisson, comparison and ablation tasks): a crash or a kill loses at most this many steps.
CHECKPOINT_EVERY = 500


# ---------------------------------------------------------------- files

def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file + rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes the file 0600: give it the mode a plain open() would (0666 less the umask)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# A temporary file of atomic_write_bytes older than this was left by a process killed mid-write
# (SIGKILL, power): a live writer renames its file within seconds.
STALE_TEMP_SECONDS = 600.0


def remove_stale_temps(folder: str | os.PathLike, now: float | None = None) -> list[Path]:
    """Delete the temporary files (``.NAME.*.tmp``) that :func:`atomic_write_bytes` left in
    ``folder`` and its subfolders when killed mid-write, older than :data:`STALE_TEMP_SECONDS`;
    the finished files they were to replace are intact. Returns those deleted."""
    now = time.time() if now is None else now
    gone = []
    for tmp in Path(folder).rglob(".*.tmp"):
        try:
            if tmp.is_file() and now - tmp.stat().st_mtime > STALE_TEMP_SECONDS:
                tmp.unlink()
                gone.append(tmp)
        except OSError:  # gone meanwhile, or not ours to delete: leave it
            pass
    return gone


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    raise TypeError(f"cannot serialize {type(o).__name__}")


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (a PSNR of identical images is infinite) as None:
    JSON has no Infinity or NaN, and Python's ``Infinity`` breaks other readers."""
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _file_above(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` that is a file, not a folder (nothing can be
    made under it), or None."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_output_file(path: str | os.PathLike, name: str) -> Path:
    """Before any work: ``path`` (the file an option names) can be written, i.e. it is no folder
    and its folder can be made and written in; else an error naming the option."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{name} {path} is a folder; expected the file to write")
    return _probe_folder(path.parent, path, name, f".{path.name}.")


def check_output_dir(path: str | os.PathLike, name: str) -> Path:
    """Before any work: ``path`` (the folder an option names) is a folder that can be made and
    written in; else an error naming the option."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{name} {path} is a file; expected a folder")
    return _probe_folder(path, path, name, ".probe.")


def _probe_folder(folder: Path, path: Path, name: str, prefix: str) -> Path:
    """Make ``folder`` and write a probe file in it (removed), or an error naming the option."""
    above = _file_above(folder / "x")
    if above is not None:
        raise NotADirectoryError(f"{name} {path}: {above} is a file, so no folder can be made under it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OSError(f"{name} {path}: cannot write there ({exc.strerror or exc})") from exc
    return path


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented, standard JSON (non-finite floats as null)."""
    text = json.dumps(_finite(obj), indent=2, default=_json_default, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"results file not found: {path}")
    return json.loads(path.read_text())


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------- environment

# what the runs write: a change there does not make the code that wrote it "dirty"
GENERATED_PATHS = ("docs/results", "docs/figures", "docs/report.pdf", "benchmarks/results")


def git_commit(root: str | os.PathLike | None = None, length: int | None = None) -> str:
    """The git commit of the checkout holding ``root`` (default: this source tree), cut to
    ``length`` hex digits, with ``-dirty`` when tracked source files differ from it (the
    generated :data:`GENERATED_PATHS` do not count); ``unknown`` outside a checkout.

    ``FASTSIREN_COMMIT`` overrides it: a copy of the tree whose ``.git`` is not its own (the
    GPU machine's copy kept the session's first commit) is told its commit by the caller.
    """
    given = os.environ.get("FASTSIREN_COMMIT", "").strip()
    if given:
        return given[:length]
    where = Path(root) if root is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
        sha = out.stdout.strip()[:length]
        if out.returncode == 0 and sha:
            spec = [":(top)", *(f":(top,exclude){p}" for p in GENERATED_PATHS)]
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *spec],
                                   cwd=where, capture_output=True, text=True, timeout=10).stdout.strip()
            return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_id(cpuinfo: str | None = None) -> str | None:
    """``"family 25 model 17 stepping 1"`` of the first processor in ``cpuinfo`` (default: the
    text of ``/proc/cpuinfo``; None where there is none): virtual machines may show a model name
    as bare as "AMD EPYC", under which different processors hide."""
    fields = {}
    try:
        text = Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("cpu family", "model", "stepping") and key not in fields:
                fields[key] = value.strip()
            if not key and fields:  # the first processor's block ends
                break
    except OSError:
        return None
    if not fields:
        return None
    return " ".join(f"{k.replace('cpu ', '')} {fields[k]}" for k in ("cpu family", "model", "stepping") if k in fields)


def device_name(device: torch.device | str) -> str:
    """"NVIDIA H100 80GB HBM3" on a GPU; "AMD EPYC 7B13 (2 cores)" on the CPU. Every results file
    and benchmark row names its device with it."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({os.cpu_count()} cores)"


def environment(device: torch.device | str = "cpu", commit: str | None = None) -> dict[str, Any]:
    """Device, versions, commit (:func:`git_commit` unless given) and date for every results file."""
    try:
        import triton

        triton_version = triton.__version__
    except Exception:
        triton_version = None
    cpu = torch.device(device).type == "cpu"
    return {
        "device": device_name(device),
        **({"cpu_id": cpu_id()} if cpu else {}),
        "threads": torch.get_num_threads() if cpu else None,
        "torch": torch.__version__,
        "triton": triton_version,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "commit": git_commit() if commit is None else commit,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def pick_device(name: str | None = None) -> torch.device:
    """``cuda`` when available (or asked for), else ``cpu``; ``cuda:N`` a GPU that exists."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={name!r} is not known; expected auto, cpu or cuda") from exc
    if dev.type not in ("cpu", "cuda") or (dev.type == "cpu" and dev.index not in (None, 0)):
        raise ValueError(f"device={name!r} is not one the tasks run on; expected auto, cpu, cuda or cuda:N")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={name!r} was asked for but no CUDA GPU is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return dev


def task_backend(backend: str | None, device: str | None) -> tuple[torch.device, str]:
    """The device a task runs on and the backend that serves it there (``backends.resolve``),
    checked before the task reads or writes anything: an unknown backend name first, then a
    device that is not here, then a backend that cannot run on it, each refused by name."""
    from fastsiren import backends

    backends.check_name(backend)
    dev = pick_device(device)
    return dev, backends.resolve(backend, dev)


SEED_MAX = 2**32 - 1  # NumPy's seed range


def check_seed(seed: int, name: str = "seed") -> int:
    """A seed NumPy, torch and ``random`` all take (0 .. 2**32 - 1), or an error naming it."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"{name} must be an integer from 0 to {SEED_MAX}, got {seed!r}")
    return seed


def seed_all(seed: int) -> None:
    import random

    check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def results_doc(task: str, profile: str, rows: list[dict], *, backend: str, seconds: float,
                device: torch.device | str = "cpu", commit: str | None = None, **extra) -> dict[str, Any]:
    """The one results shape of every task: task, profile, device, backend, commit, date,
    seconds, versions, threads (torch's CPU threads; None on a GPU), any extra keys, then ``rows``
    (flat dicts of scalars). A long run that rewrites its document passes ``commit=`` as taken
    when it started."""
    env = environment(device, commit)  # a given commit spares the git calls on every rewrite
    for i, row in enumerate(rows):
        bad = {k: type(v).__name__ for k, v in row.items()
               if not (v is None or isinstance(v, (str, int, float, bool, np.floating, np.integer)))}
        if bad:
            raise TypeError(f"rows[{i}] must hold scalars only, got {bad}")
    return {"task": task, "profile": profile, "device": env["device"], "backend": backend,
            "commit": env["commit"], "date": env["date"], "seconds": round(float(seconds), 3),
            "versions": {k: env[k] for k in ("torch", "triton", "cuda", "python")}, "threads": env["threads"],
            **({"cpu_id": env["cpu_id"]} if "cpu_id" in env else {}), **extra, "rows": rows}


# ---------------------------------------------------------------- run folders

# the fitted networks a task writes when it finishes (``model.pt``, ``model-<method>.pt``)
WEIGHT_FILES = ("model.pt", "model-*.pt")


# settings a --resume may change: they do not change what the run computes
RESUMABLE_CHANGES = ("resume", "out", "progress", "checkpoint_every")


class RunFolder:
    """A task's output folder. ``config.json`` first, ``metrics.json`` last.

    ``checkpoints``: the glob of the task's checkpoint files; ``resume`` with none of them in
    the folder says so on stderr (the run starts from step 0). On ``resume`` a finished run's
    ``metrics.json`` stays until :meth:`finish` replaces it (atomically): a resume that fails
    loses no result. Without ``resume`` a folder that holds a run's work is refused: a finished
    run (``metrics.json``), an unfinished one (its checkpoints, :data:`WEIGHT_FILES` or
    ``parts/``: what a Ctrl-C kept, which only ``--resume`` continues), and a folder of other
    files with no run's ``config.json`` (never a task's to delete or overwrite; nor, with
    ``resume``, to continue from). A ``resume`` may change only :data:`RESUMABLE_CHANGES`."""

    def __init__(self, path: str | os.PathLike, config: Any, resume: bool = False,
                 checkpoints: str | None = None) -> None:
        self.path = Path(path)
        cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"out={self.path} is a file, not a run folder; choose another --out")
        if self.path.exists() and (self.path / "metrics.json").exists() and not resume:
            raise FileExistsError(
                f"out={self.path} already holds a finished run (metrics.json); "
                "choose another --out or delete it (or pass --resume to rebuild its outputs)")
        if self.path.is_dir() and not (self.path / "config.json").exists() and any(self.path.iterdir()):
            # with --resume too: what is there (a checkpoint of another model with the same shapes, ...)
            # cannot be told to belong to this run, as a saved config.json says it does
            raise FileExistsError(
                f"out={self.path} holds files but no fastsiren run (no config.json): a task may overwrite "
                f"or {'continue from' if resume else 'delete'} what it finds there, so choose a new or empty "
                "folder for --out")
        if self.path.is_dir() and not resume:
            kept = [p.name for pattern in [*WEIGHT_FILES, *([checkpoints] if checkpoints is not None else [])]
                    for p in sorted(self.path.glob(pattern))]
            if (self.path / "parts").is_dir() and any((self.path / "parts").iterdir()):
                kept.append("parts/")
            if kept:
                raise FileExistsError(
                    f"out={self.path} holds an unfinished run ({', '.join(kept[:4])}"
                    f"{', ...' if len(kept) > 4 else ''}): pass --resume to continue it, or delete it or choose "
                    "another --out to start afresh")
        if resume and self.path.is_dir():
            remove_stale_temps(self.path)
        if resume and (self.path / "config.json").exists():
            old = _read_config(self.path / "config.json")
            # compare as saved: a tuple setting (methods, lrs, omegas, ...) comes back a list
            saved = json.loads(json.dumps(cfg, default=_json_default))
            diff = {k: (old.get(k), v) for k, v in saved.items()
                    if k not in RESUMABLE_CHANGES and old.get(k) != v}
            if diff:
                raise ValueError(f"--resume with a different config than the saved run: {diff}")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"out={self.path}: cannot create the run folder: {exc}") from exc
        if resume and checkpoints is not None and not any(self.path.glob(checkpoints)):
            print(f"--resume: no checkpoint in {self.path}: starting from step 0", file=sys.stderr)
        write_json(self.path / "config.json", cfg)

    def file(self, name: str) -> Path:
        return self.path / name

    def finish(self, metrics: dict[str, Any]) -> dict[str, Any]:
        write_json(self.path / "metrics.json", metrics)
        return metrics


def _read_config(path: Path) -> dict:
    """A run folder's saved ``config.json`` (a JSON object); a damaged one is a clear error."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, or bytes that are not UTF-8
        raise ValueError(f"--resume: {path} is not a readable run config ({exc}); repair or delete it, "
                         "or choose another --out") from exc
    if not isinstance(old, dict):
        raise ValueError(f"--resume: {path} holds a JSON {type(old).__name__}, expected the run's config "
                         "(a JSON object); repair or delete it, or choose another --out")
    return old


class Parts:
    """The pieces of a run whose methods are whole fits (``sr``, ``vfi``): each finished one's
    arrays and info, written atomically to ``RUN/parts/NAME.npz`` as soon as it is done, and
    the checkpoint of each of its fits (``NAME.pt``, ``NAME.<fit>.pt``: :meth:`checkpoint`; the
    model, its optimizer and step, written while it runs and kept after it as the fitted model),
    so that ``--resume`` after Ctrl-C or a crash takes the finished pieces from there and
    continues the fit that was cut short. Without ``resume`` there are none (:class:`RunFolder`
    refuses a folder with pieces unless resumed). Everything stays after the run
    finishes (a ``--resume`` of a finished run rebuilds its outputs from the pieces); delete
    ``parts/`` to save the space.

    ``earlier``: the seconds spent before this start on what it takes from here (the finished
    pieces' ``seconds``, the training seconds of the checkpoints it continues)."""

    def __init__(self, folder: RunFolder, resume: bool) -> None:
        self.path = folder.path / "parts"
        self.earlier = 0.0
        if resume and not any(self.path.glob("*.npz")) and not any(self.path.glob("*.pt")):
            print(f"--resume: nothing finished in {self.path}: starting from the first method", file=sys.stderr)

    def file(self, name: str) -> Path:
        return self.path / f"{name}.npz"

    def checkpoint(self, name: str, fit: str | None = None) -> Path:
        """The checkpoint file of the piece ``name`` (of its fit ``fit``, when it has several)."""
        return self.path / (f"{name}.{fit}.pt" if fit is not None else f"{name}.pt")

    def _checkpoints(self, name: str) -> list[Path]:
        return [ck for ck in [self.checkpoint(name), *self.path.glob(f"{glob.escape(name)}.*.pt")] if ck.exists()]

    def started(self, name: str) -> float:
        """The training seconds the checkpoints of the unfinished piece ``name`` hold (the
        caller is about to continue its fits), also added to :attr:`earlier`."""
        seconds = 0.0
        for ck in self._checkpoints(name):
            try:
                seconds += float(torch.load(ck, map_location="cpu", weights_only=True)["seconds"])
            except Exception:  # the fit's own resume names an unreadable checkpoint
                pass
        self.earlier += seconds
        return seconds

    def get(self, name: str) -> tuple[dict[str, np.ndarray], dict] | None:
        """(arrays, info) of the piece ``name``, or None if it has not finished."""
        path = self.file(name)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files if k != "info"}
                info = json.loads(str(z["info"]))
        except Exception as exc:  # zip, key, JSON, pickle-refused errors: all one answer
            raise ValueError(f"--resume: {path} is unreadable ({type(exc).__name__}: {exc}); delete it and the "
                             "piece's checkpoints (NAME.pt, NAME.*.pt) to run that piece again (a start without "
                             "--resume refuses the unfinished folder)") from exc
        self.earlier += float(info.get("seconds", 0.0)) if isinstance(info, dict) else 0.0
        return arrays, info

    def put(self, name: str, arrays: dict[str, np.ndarray], info: dict) -> None:
        import io

        buf = io.BytesIO()
        np.savez(buf, info=np.array(json.dumps(info, default=_json_default)), **arrays)
        atomic_write_bytes(self.file(name), buf.getvalue())


# a table's settings that may differ between a run and its --resume: where its files go, the
# progress bars, and the device/backend as asked (the resolved ones are compared)
_RESUME_FREE = ("out", "progress", "resume", "device", "backend")


def check_not_unfinished(path: str | os.PathLike) -> None:
    """A table started without ``--resume`` may replace a finished results file at ``path``,
    never the rows of a run cut short (``complete`` false): an error saying so, before any work."""
    path = Path(path)
    try:
        old = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        old = None  # not a results document: nothing of a table to keep
    if isinstance(old, dict) and old.get("complete") is False and isinstance(old.get("rows"), list):
        raise ValueError(f"{path} holds an unfinished table ({len(old['rows'])} rows of a run cut short): pass "
                         "--resume to go on from them, or delete the file to start over")


def resumed_rows(path: str | os.PathLike, resume: bool, *, key: Callable[[dict], tuple], units,
                 **match) -> tuple[dict[tuple, list[dict]], dict]:
    """The rows a results table started again with ``--resume`` keeps from its earlier file.

    ``path``: the results document the table rewrites as it goes (``complete`` False until the
    end); ``key(row)``: the unit (image and scale, triplet) a row belongs to; ``units``: this
    run's units; ``match``: the fields the earlier document must share with this run (task,
    profile, device, backend, settings; in a dict-valued field, :data:`_RESUME_FREE` may differ, and
    a key only the earlier document has is not compared).
    Returns ``({unit: rows}, extra)``: ``extra`` carries the earlier run's ``seconds`` and a
    ``resumed`` record (the earlier commits and dates, the rows kept) for the new document.
    Without ``resume``: nothing kept, and an unfinished table at ``path`` (``complete`` false:
    a run cut short) is an error, never overwritten; a finished one is replaced by the new run.
    With ``resume`` and no file: nothing kept, said on stderr. A file
    that is not such a document, of other settings, or with rows of units this run does not
    have (other images, scales, triplets) is an error naming the file and what differs; rows of
    other code (another commit) are kept, and said on stderr."""
    path = Path(path)
    if not resume:
        check_not_unfinished(path)
        return {}, {}
    if not path.exists():
        print(f"--resume: no results file {path} yet: starting from the first row", file=sys.stderr)
        return {}, {}
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"--resume: {path} is not a readable results file ({exc}); repair or delete it, "
                         "or run without --resume") from exc
    if not isinstance(old, dict) or not isinstance(old.get("rows"), list):
        raise ValueError(f"--resume: {path} is not a results document (a JSON object with rows); repair or "
                         "delete it, or run without --resume")

    def saved(v):
        return json.loads(json.dumps(v, default=_json_default))  # as saved: tuples come back lists

    diff = {}
    for k, v in match.items():
        a, b = old.get(k), saved(v)
        if isinstance(a, dict) and isinstance(b, dict):
            # a setting only the earlier file has is not one of this run (left out as unused, or no
            # longer a setting): not compared
            d = {f"{k}.{n}": (a.get(n), b.get(n)) for n in sorted(b)
                 if n not in _RESUME_FREE and a.get(n) != b.get(n)}
            diff.update(d)
        elif a != b:
            diff[k] = (a, b)
    if diff:
        raise ValueError(f"--resume: {path} was written with other settings (then, now): {diff}; run without "
                         "--resume to start the table again, or write it elsewhere")
    done: dict[tuple, list[dict]] = {}
    try:
        for r in old["rows"]:
            done.setdefault(key(r), []).append(r)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"--resume: {path} holds a row that is not one of this table ({type(exc).__name__}: "
                         f"{exc}); repair or delete it") from exc
    other = sorted(set(done) - set(units), key=str)
    if other:
        raise ValueError(f"--resume: {path} holds rows of {other}, which this run does not have; run with the "
                         "images, scales or triplets it was written with, or without --resume")
    here = git_commit()
    if old.get("commit") != here:
        print(f"--resume: {path}: keeping rows measured by commit {old.get('commit')} (this is {here})",
              file=sys.stderr)
    rec = {"commit": old.get("commit"), "date": old.get("date"), "rows": len(old["rows"])}
    return done, {"seconds": float(old.get("seconds") or 0.0), "resumed": [*old.get("resumed", []), rec]}


# ---------------------------------------------------------------- training

@dataclasses.dataclass
class TrainState:
    step: int = 0
    seconds: float = 0.0
    history: list[dict] = dataclasses.field(default_factory=list)
    stopped: str | None = None  # the reason ``stop`` gave for ending before the budget
    earlier: float = 0.0  # the training seconds of the checkpoint this start continued (before Ctrl-C)


def train(model: torch.nn.Module, loss_fn: Callable[[], Any], *, steps: int, lr: float,
          checkpoint: Path | None = None, checkpoint_every: int = CHECKPOINT_EVERY, resume: bool = False,
          log_every: int = 50, evaluate: Callable[[int], dict] | None = None,
          desc: str = "train", progress: bool = True,
          schedule: Callable[[torch.optim.Optimizer], Any] | None = None,
          stop: Callable[[int, Any], str | None] | None = None,
          extra_state: tuple[Callable[[], Any], Callable[[Any], None]] | None = None,
          optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer] | None = None) -> TrainState:
    """Adam on ``loss_fn()`` for ``steps`` full-batch steps (every training loop of the tasks;
    ``optimizer(model)``: another optimizer, or Adam with parameter groups, instead).

    ``loss_fn()`` returns the loss, or ``(loss, terms)`` with ``terms`` handed to ``stop``.
    Every ``log_every`` steps (and at the end) ``evaluate(step)`` returns a dict that is
    appended to the history with the step, loss and training seconds (evaluation excluded).
    ``schedule(optimizer)`` makes a learning-rate scheduler, stepped after every step;
    ``stop(step, terms)`` returns a reason to end before ``steps`` (kept in ``state.stopped``)
    or None; ``extra_state`` = (get, set) of what else the loss or stop functions carry from
    step to step (random generators, running means).
    The checkpoint (model, optimizer, scheduler, RNG, extra state, history) is written
    atomically every ``checkpoint_every`` steps and on Ctrl-C; ``resume`` continues from it.
    A Ctrl-C during a step lets the step finish first; a second one stops at once and keeps
    the last checkpoint of a whole step (the one in progress is half applied).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    from tqdm.auto import tqdm

    opt = optimizer(model) if optimizer is not None else torch.optim.Adam(model.parameters(), lr=lr)
    sched = schedule(opt) if schedule is not None else None
    state = TrainState()
    if resume and checkpoint is not None and checkpoint.exists():
        try:
            ck = torch.load(checkpoint, map_location=next(model.parameters()).device, weights_only=False)
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            if sched is not None:
                sched.load_state_dict(ck["scheduler"])
            if extra_state is not None:
                extra_state[1](ck["extra"])
            state = TrainState(int(ck["step"]), float(ck["seconds"]), list(ck["history"]), ck.get("stopped"),
                               earlier=float(ck["seconds"]))
            torch.set_rng_state(ck["rng"])
        except Exception as exc:  # unpickling, zip, EOF, key, size-mismatch errors: all one answer
            reason = " ".join(str(exc).split())
            reason = reason if len(reason) <= 200 else reason[:197] + "..."
            raise ValueError(f"--resume: checkpoint {checkpoint} is unreadable or does not match this run's "
                             f"model ({type(exc).__name__}: {reason}); delete it to start that training "
                             "from step 0 with --resume (a start without --resume refuses the unfinished "
                             "folder)") from exc

    def save() -> None:
        if checkpoint is not None:
            ck = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": state.step,
                  "seconds": state.seconds, "history": state.history, "stopped": state.stopped,
                  "rng": torch.get_rng_state()}
            if sched is not None:
                ck["scheduler"] = sched.state_dict()
            if extra_state is not None:
                ck["extra"] = extra_state[0]()
            atomic_torch_save(ck, checkpoint)

    dev = next(model.parameters()).device
    bar = tqdm(total=steps, initial=state.step, desc=desc, disable=not progress, dynamic_ncols=True,
               leave=False)
    pending, restore = _defer_interrupts()
    mid_step = False
    try:
        while state.step < steps and state.stopped is None:
            mid_step = True
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            out = loss_fn()
            loss, terms = out if isinstance(out, tuple) else (out, None)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            state.seconds += time.perf_counter() - t0
            state.step += 1
            bar.update(1)
            if stop is not None:
                state.stopped = stop(state.step, terms) or None
            if state.step % log_every == 0 or state.step == steps or state.stopped is not None:
                rec = {"step": state.step, "seconds": round(state.seconds, 4), "loss": float(loss.detach())}
                if evaluate is not None:
                    rec.update(evaluate(state.step))
                state.history.append(rec)
                bar.set_postfix({k: f"{v:.3g}" for k, v in rec.items() if isinstance(v, (int, float))
                                 and k not in ("step", "seconds")})
            mid_step = False
            if checkpoint is not None and state.step % checkpoint_every == 0:
                save()
            if pending:  # Ctrl-C / SIGTERM during the step: it was let finish, stop now
                pending.pop()()
    except KeyboardInterrupt:
        if not mid_step:  # else a second signal cut a step short: keep the last whole step's checkpoint
            save()
        raise
    finally:
        restore()
        bar.close()
    save()
    if pending:  # a signal after the last step's check: act on it now that the checkpoint is written
        pending.pop()()
    return state


def _defer_interrupts() -> tuple[list, Callable[[], None]]:
    """Hold SIGINT (and a SIGTERM that a Python handler turns into an exception, as the CLI's
    does) until the running step ends, so the checkpoint written on Ctrl-C is that of a whole
    step: Adam's update applied to every parameter, the step's history record appended. A
    second signal acts at once. Returns (pending calls, restore); does nothing off the main thread."""
    import signal
    import threading

    pending: list[Callable[[], None]] = []
    if threading.current_thread() is not threading.main_thread():
        return pending, lambda: None
    saved = {}
    for name in ("SIGINT", "SIGTERM"):
        sig = getattr(signal, name, None)
        old = signal.getsignal(sig) if sig is not None else None
        if not callable(old):  # SIG_DFL / SIG_IGN / not set from Python: leave it alone
            continue

        def hold(signum, frame, old=old):
            if pending:
                old(signum, frame)
            pending.append(lambda: old(signum, frame))

        saved[sig] = old
        signal.signal(sig, hold)

    def restore() -> None:
        for sig, old in saved.items():
            signal.signal(sig, old)

    return pending, restore


# ---------------------------------------------------------------- figures

def to_uint8(img) -> np.ndarray:
    """An image in [-1, 1] (tensor or array, (H, W) or (H, W, C)) -> uint8 (H, W[, 3])."""
    a = img.detach().cpu().numpy() if hasattr(img, "detach") else np.asarray(img)
    a = np.clip((a.astype(np.float64) + 1) / 2, 0, 1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    return np.round(a * 255).astype(np.uint8)


def save_png(path: str | os.PathLike, img) -> None:
    """Save an image in [-1, 1] as an 8-bit PNG (atomically)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(to_uint8(img)).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


CAPTION_KEY = "Description"  # the PNG text chunk that carries a figure's caption


def save_figure(fig, path: str | os.PathLike, dpi: int = 120, caption: str | None = None) -> None:
    """Save a matplotlib figure as PNG atomically and close it. ``caption`` (what the figure
    shows, in a sentence or two) travels inside the PNG, where the report and
    :func:`publish` find it: a figure that says what it is, wherever it is copied."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight",
                metadata={CAPTION_KEY: caption} if caption else None)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def figure_caption(path: str | os.PathLike) -> str | None:
    """The caption :func:`save_figure` stored in a PNG, or None (no caption, not a PNG)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            text = getattr(im, "text", {}) or {}
    except (OSError, UnidentifiedImageError):
        return None
    return text.get(CAPTION_KEY) or None


def publish(run_dir: str | os.PathLike, variant: str, *, results_dir: str | os.PathLike = "docs/results",
            figures_dir: str | os.PathLike = "docs/figures") -> list[Path]:
    """Copy a finished run into the report's inputs: ``metrics.json`` becomes
    ``results_dir/<variant>-<profile>.json`` and every captioned figure of the run
    (raw image outputs have no caption) ``figures_dir/<variant>-<profile>[-<name>].png``,
    where ``<name>`` is the file's stem without a leading ``<variant>-``. Returns the paths
    written; an unfinished run (no ``metrics.json``) is an error, never half published."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"run_dir={run_dir} holds no metrics.json: not a finished run, nothing to publish")
    doc = read_json(metrics_path)
    profile = doc.get("profile")
    if profile not in PROFILES:
        raise ValueError(f"{metrics_path} has profile={profile!r}; expected one of {list(PROFILES)}")
    stem = f"{variant}-{profile}"
    written = []
    for fig in sorted(run_dir.glob("*.png")):
        if figure_caption(fig) is None:
            continue
        name = fig.stem[len(variant) + 1:] if fig.stem.startswith(f"{variant}-") else fig.stem
        name = "" if name == variant else name
        dst = Path(figures_dir) / (f"{stem}-{name}.png" if name else f"{stem}.png")
        atomic_write_bytes(dst, fig.read_bytes())
        written.append(dst)
    dst = Path(results_dir) / f"{stem}.json"
    atomic_write_bytes(dst, metrics_path.read_bytes())  # last: the results name the finished run
    return written + [dst]


def plt_figure(*args, **kwargs):
    """A matplotlib figure with the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def plt_canvas(**kwargs):
    """An empty matplotlib figure with the non-interactive Agg backend, for layouts that
    :func:`plt_figure`'s grid does not give (subfigures, mosaics)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(**kwargs)



def colorbar(fig, mappable, ax, label: str, *, extend: str = "neither", orientation: str = "vertical",
             fontsize: float = 7):
    """A slim labelled colour bar in an inset beside ``ax`` (right of it, or below it when
    ``orientation="horizontal"``): it takes no width from ``ax``, so a grid of panels stays
    aligned. ``extend``: "max"/"both" where the scale clips the data."""
    box = [1.03, 0.0, 0.05, 1.0] if orientation == "vertical" else [0.0, -0.1, 1.0, 0.05]
    cb = fig.colorbar(mappable, cax=ax.inset_axes(box), orientation=orientation, extend=extend)
    cb.set_label(label, fontsize=fontsize)
    cb.ax.tick_params(labelsize=fontsize)
    if orientation == "horizontal":  # a bar as wide as a panel: few ticks, or their labels run together
        from matplotlib.ticker import MaxNLocator

        cb.locator = MaxNLocator(nbins=4)
        cb.update_ticks()
    return cb


def note_if_zero(ax, img, text: str = "\u2261 0\n(piecewise linear\nnetwork)") -> None:
    """Write ``text`` across ``ax`` when the map ``img`` is identically zero (a ReLU network's
    Laplacian), so a blank panel does not read as a failed render."""
    if not np.any(np.asarray(img)):
        ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=7,
                bbox={"facecolor": "white", "edgecolor": "0.6", "alpha": 0.9})


def legend_outside(ax, **kwargs):
    """The legend of ``ax`` to the right of it, outside the axes: it covers no data."""
    kwargs = {"fontsize": 7, "frameon": False, **kwargs}
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)


def worst_window(err: np.ndarray, shape: tuple[int, int], step: int = 1) -> tuple[int, int]:
    """(top, left) of the ``shape`` window of ``err`` (H, W) with the largest mean, among the
    positions on a grid of ``step`` pixels (the last row and column of positions always in):
    a deterministic "where the error is" crop. Ties go to the first such position."""
    h, w = err.shape
    ch, cw = min(shape[0], h), min(shape[1], w)
    sums = np.pad(np.asarray(err, np.float64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    tops = sorted({*range(0, h - ch + 1, step), h - ch})
    lefts = sorted({*range(0, w - cw + 1, step), w - cw})
    t, lf = np.ix_(tops, lefts)
    win = sums[t + ch, lf + cw] - sums[t, lf + cw] - sums[t + ch, lf] + sums[t, lf]
    i, j = np.unravel_index(np.argmax(win), win.shape)
    return int(tops[i]), int(lefts[j])


# ---------------------------------------------------------------- CLI

def add_common_arguments(parser, *, image: str | None = "camera", default_out: str,
                         resume: str = "continue from the run folder's checkpoint") -> None:
    """The options every task shares (the CLI conventions every task follows); ``resume``: the help of
    ``--resume`` (a task whose resume is not a step checkpoint says what it does instead)."""
    if image is not None:
        parser.add_argument("--image", default=image,
                            help="scikit-image image name (camera, astronaut, ...) or an image file path")
    parser.add_argument("--out", default=default_out, help="run folder to write")
    parser.add_argument("--profile", choices=PROFILES, default="cpu",
                        help="quick = seconds (tests); cpu = minutes on 2 cores; paper = the paper's settings (GPU)")
    parser.add_argument("--backend", default="auto",
                        help="auto | reference | torch | triton | cuda (auto: cuda/triton on a GPU, torch on the CPU)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--seed", type=_seed_arg, default=0, help=f"random seed, an integer from 0 to {SEED_MAX}")
    parser.add_argument("--resume", action="store_true", help=resume)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _seed_arg(text: str) -> int:
    """argparse type of ``--seed``: its error names the range (argparse names the option)."""
    import argparse

    try:
        return check_seed(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {SEED_MAX}, got {text!r}") from exc


def add_publish_arguments(parser) -> None:
    """``--publish [--results-dir --figures-dir]``: copy the finished run where the report reads."""
    parser.add_argument("--publish", action="store_true",
                        help="after the run, copy metrics.json to RESULTS_DIR/<study>-<profile>.json and its "
                             "figures to FIGURES_DIR, where `fastsiren report` reads them")
    parser.add_argument("--results-dir", default="docs/results", help="results folder of --publish")
    parser.add_argument("--figures-dir", default="docs/figures", help="figure folder of --publish")


def check_publish_args(args) -> None:
    """What a task's ``main`` calls before its run: with ``--publish``, ``--results-dir`` and
    ``--figures-dir`` must be folders that can be written, so a long run is not lost to a typo."""
    if getattr(args, "publish", False):
        check_output_dir(args.results_dir, "--results-dir")
        check_output_dir(args.figures_dir, "--figures-dir")


def publish_if_asked(args, variant: str) -> None:
    """What a task's ``main`` calls after a finished run: :func:`publish` when ``--publish``
    (whose folders :func:`check_publish_args` checked before the run)."""
    if getattr(args, "publish", False):
        for path in publish(args.out, variant, results_dir=args.results_dir, figures_dir=args.figures_dir):
            print(f"published {path}")


def add_network_arguments(parser, *, layers: bool = True) -> None:
    """``--size --steps --lr --hidden [--layers]``: the grid and network options of the image
    tasks, each defaulting to its profile's value."""
    parser.add_argument("--size", type=int, help="side of the square image grid (default: from the profile)")
    parser.add_argument("--steps", type=int, help="full-image Adam steps (default: from the profile)")
    parser.add_argument("--lr", type=float, help="Adam learning rate (default: from the profile)")
    parser.add_argument("--hidden", type=int, help="hidden width (default: from the profile)")
    if layers:
        parser.add_argument("--layers", type=int,
                            help="hidden->hidden layers after the first (official counting; paper: 3; "
                                 "default: from the profile)")


def parse_floats(text: str | None, name: str) -> tuple[float, ...] | None:
    """``"1e-4,1e-3"`` -> (1e-4, 1e-3); None stays None (the profile decides)."""
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.split(",") if x)
    except ValueError as exc:
        raise ValueError(f"{name} must be comma-separated numbers, got {text!r}") from exc


def check_unique(name: str, values) -> tuple:
    """``values`` as a tuple, or an error naming ``name`` when one is listed twice (a method,
    problem or case twice would be trained twice and share its rows' names and checkpoint files)."""
    values = tuple(values)
    twice = sorted({str(v) for v in values if values.count(v) > 1})
    if twice:
        raise ValueError(f"{name} lists {', '.join(twice)} more than once: {list(values)}")
    return values


def check_rates(name: str, rates) -> tuple[float, ...]:
    """A sweep of learning rates as floats: at least one, each > 0 and finite, none twice, and no
    two that print the same at six significant digits (``f"{lr:g}"`` names their rows and checkpoint
    files)."""
    rates = tuple(float(x) for x in rates)
    if not rates:
        raise ValueError(f"{name} must name at least one learning rate, got none")
    for lr in rates:
        positive(f"learning rate ({name} entry)", lr)
    check_unique(name, rates)
    if len({f"{lr:g}" for lr in rates}) < len(rates):
        raise ValueError(f"{name} has learning rates equal to six significant digits, which would share their "
                         f"rows' names and checkpoint files: {list(rates)}")
    return rates


def fill_profile(config, defaults: dict[str, dict[str, Any]]):
    """``config`` (a dataclass with a ``profile`` field) with every None field that
    ``defaults[profile]`` names filled from it; an unknown profile is a clear error."""
    if config.profile not in defaults:
        raise ValueError(f"profile={config.profile!r} is not known; expected one of {list(defaults)}")
    filled = {k: (getattr(config, k) if getattr(config, k) is not None else v)
              for k, v in defaults[config.profile].items()}
    return dataclasses.replace(config, **filled)


def non_negative(name: str, value, kind=float):
    """Check a CLI/config number is >= 0 and finite (not inf, not nan) before any training starts."""
    if value is None:
        return value
    if not (value >= 0 and value != float("inf")):  # nan fails the first test
        raise ValueError(f"{name} must be >= 0 and finite, got {value}")
    return kind(value)


MIN_SIZE = 8  # the smallest image side a task takes: SSIM's 7x7 window fits in it


def check_size(name: str, value, why: str = "(SSIM needs a 7x7 window)"):
    """Check an image side (``--size``) is >= :data:`MIN_SIZE` before any training starts."""
    if value is not None and value < MIN_SIZE:
        raise ValueError(f"{name} must be >= {MIN_SIZE} {why}, got {value}")
    return value


def figure_stems(names, what: str) -> None:
    """Refuse ``names`` (bundled names or file paths) whose figures would share a file name:
    a table names an input's figures by its stem (``a/x.png`` and ``b/x.jpg`` are both ``x``)."""
    seen: dict[str, str] = {}
    for name in names:
        stem = Path(str(name)).stem
        if stem in seen and seen[stem] != str(name):
            raise ValueError(f"{what} {seen[stem]!r} and {str(name)!r} would share the figure name {stem!r}; "
                             "rename one, or run them apart")
        seen[stem] = str(name)


def script_main(main: Callable[[], int], prog: str, interrupted: str) -> None:
    """The ``python -m`` entry of a script outside the ``fastsiren`` command (the SR table, the
    SRCNN training): exits with ``main()``'s status, a one-line error naming what was wrong
    (status 2) instead of a traceback, or on Ctrl-C or SIGTERM what was kept (``interrupted``,
    status 130)."""
    import signal

    from fastsiren.cli import _terminate_as_interrupt

    if hasattr(signal, "SIGTERM"):  # `timeout`, a scheduler: the Ctrl-C path, as in `fastsiren`
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        code = main()
    except KeyboardInterrupt:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        raise SystemExit(130) from None
    except (ValueError, OSError, TypeError, RuntimeError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(code)


def positive(name: str, value, kind=float):
    """Check a CLI/config number is > 0 and finite (not inf, not nan) before any training starts."""
    if value is None:
        return value
    if not (value > 0 and value != float("inf")):  # nan fails the first test
        raise ValueError(f"{name} must be > 0 and finite, got {value}")
    return kind(value)
