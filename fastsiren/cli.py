"""The ``fastsiren`` command: one subcommand per task.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``main(args) -> int``; modules are imported only when their subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "fit": ("fastsiren.tasks.fit", "fit a network to an image (SIREN or a baseline)"),
    "poisson": ("fastsiren.tasks.poisson", "reconstruct an image from its gradient or Laplacian"),
    "compare": ("fastsiren.tasks.compare", "SIREN vs same-size ReLU / ReLU+PE / tanh MLPs"),
    "ablate": ("fastsiren.tasks.ablate", "ablations: first-layer init, hidden init, omega_0"),
    "sr": ("fastsiren.tasks.sr", "single-image super-resolution with SIREN and baselines"),
    "vfi": ("fastsiren.tasks.vfi", "video frame interpolation with SIREN and baselines"),
    "experiments": ("fastsiren.tasks.experiments", "run every experiment of the report at one profile, published"),
    "bench": ("fastsiren.benchmarks.cli", "speed and memory benchmarks of every backend"),
    "report": ("fastsiren.report.build", "build docs/report.pdf from the results files"),
}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default unless its help already says it or there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        # `is`, not `in`: a default of 0 (== False) is a value to show; "(default" (not the bare
        # word, which may name a value: bench's size "default") marks a help that says its own
        if "(default" in text or any(action.default is d for d in (None, False, argparse.SUPPRESS)):
            return text
        return super()._get_help_string(action)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    from fastsiren import __version__

    parser = argparse.ArgumentParser(
        prog="fastsiren", description="SIREN with fused kernels: tasks, benchmarks and the report.")
    parser.add_argument("--version", action="version", version=f"fastsiren {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_,
                           formatter_class=_HelpFormatter)
        if only == name:
            importlib.import_module(module).add_arguments(p)
            parser.set_defaults(_command_parser=p)
    return parser


def _terminate_as_interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    script = argv is None  # the console script: this process ends with the command
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in SUBCOMMANDS:
        parser = build_parser()
        if command is None:
            if "--version" in argv:
                parser.parse_args(["--version"])  # prints it and exits
            unknown = [a for a in argv if a not in ("-h", "--help")]
            if unknown:
                parser.error(f"unrecognized arguments: {' '.join(unknown)} (no command given; expected one of "
                             f"{list(SUBCOMMANDS)})")
            parser.print_help()
            return 0 if argv else 2
        real = next((a for a in argv if a in SUBCOMMANDS), None)
        if real is not None:  # an option before the command: its value was taken for the command
            rest = [a for a in argv if a is not real]
            parser.error(f"options go after the command: fastsiren {real} {' '.join(rest)}")
        parser.error(f"unknown command {command!r}; expected one of {list(SUBCOMMANDS)}")
    args, extra = build_parser(only=command).parse_known_args(argv)
    if extra:  # the command's own usage, not the top level's
        args._command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # SIGTERM (`timeout`, a batch scheduler, a closing terminal) takes the Ctrl-C path: the
    # training loops write their checkpoint before the process ends
    if hasattr(signal, "SIGTERM"):
        try:
            signal.signal(signal.SIGTERM, _terminate_as_interrupt)
        except ValueError:  # not the main thread (main() called from a worker): leave it
            pass
    module = importlib.import_module(SUBCOMMANDS[command][0])
    try:
        return int(module.main(args) or 0)
    except BaseException as exc:
        # Ctrl-C, or an error it caused (e.g. an import it cut short raises ImportError from it)
        if isinstance(exc, KeyboardInterrupt) or isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            if script:  # the task has kept its work: a second Ctrl-C must not cut the exit short
                for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
                    if sig is not None:
                        signal.signal(sig, signal.SIG_IGN)
            if getattr(args, "resume", None) is None:  # only the tasks that have --resume
                print("interrupted", file=sys.stderr)
            else:  # a task without checkpoints says what --resume does for it (INTERRUPT_HINT)
                print(getattr(module, "INTERRUPT_HINT",
                              "interrupted: the last checkpoint of the run folder is kept; rerun with --resume"),
                      file=sys.stderr)
            return 130
        if isinstance(exc, (ValueError, OSError, TypeError, RuntimeError)):
            print(f"fastsiren {command}: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
