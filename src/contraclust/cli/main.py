"""The ``contraclust`` command line: fit, evaluate, predict, report, pack, reproduce, suggest-k, views,
and listings of methods and presets.

Each command's arguments are in ``parsers.py`` (light: ``--help`` and usage errors import no torch) and what it
does in a module of its own (``fit.py``, ...), imported here once the command is known (``COMMANDS``).
Exit codes: 0 success, 1 a run or data error (one line on stderr, no traceback), 2 bad usage,
130 interrupted by Ctrl-C (SIGINT), 143 terminated (SIGTERM): the last checkpoint is kept and the run
folder's lock released; continue with ``fit --out DIR --resume``.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

from contraclust.cli.arguments import error, error_line
from contraclust.cli.parsers import build_parser
from contraclust.console import show_messages
from contraclust.errors import ContraclustError
from contraclust.threads import ask_for_threads
from contraclust.training.budget import parse_duration


# command -> (module, function): the module is imported once the command is known (module docstring)
COMMANDS = {"embed": ("embed", "run"), "fit": ("fit", "run"), "evaluate": ("predict", "run_evaluate"),
            "predict": ("predict", "run_predict"), "report": ("report", "run"), "pack": ("pack", "run"),
            "reproduce": ("reproduce", "run"), "suggest-k": ("suggest_k", "run"), "views": ("views", "run"),
            "methods": ("listing", "run_methods"), "presets": ("listing", "run_presets")}


def main(argv: list[str] | None = None) -> int:
    """Run the command in ``argv`` (default: the process's own arguments); returns the exit code. A time
    budget counts from the process's start when the command line is the process's own (so the
    interpreter's start and the imports are inside it), else from this call."""
    started_at = time.monotonic() - (seconds_since_process_start() if argv is None else 0.0)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.started_at = started_at
    if args.command is None:
        parser.print_help()
        return 2
    if hasattr(args, "threads"):
        ask_for_threads(args.threads)  # (None: chosen from the measured speed)
    if int(os.environ.get("RANK", "0")) == 0:
        show_messages()  # the package's messages (warnings, plans, progress notes) as lines on stderr
    in_main_thread = threading.current_thread() is threading.main_thread()  # (signals are set there only)
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main_thread else None
    try:
        if getattr(args, "budget", None) is not None:
            parse_duration(args.budget)  # a bad duration is refused before the command's heavy imports
        module, function = COMMANDS[args.command]
        if args.command == "presets" and (args.data is not None or args.clusters is not None):
            module, function = "recipe", "run"  # the listing is light; the recipe for data reads it
        return getattr(importlib.import_module(f"contraclust.cli.{module}"), function)(args)
    except ContraclustError as exc:
        error(str(exc))
        return 1
    except OSError as exc:  # a file the user named cannot be written or read: one line, never a traceback
        error(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        return 1
    except Terminated:
        error_line(f"terminated (SIGTERM); {what_is_kept(args)}")
        return 143
    except KeyboardInterrupt:
        error_line(f"interrupted; {what_is_kept(args)}")
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def what_is_kept(args: argparse.Namespace) -> str:
    """After Ctrl-C or SIGTERM: what the stopped command left, and how to go on."""
    folder = getattr(args, "out", None)
    if args.command == "pack":
        return "the images packed so far are kept: the same command continues the pack"
    if args.command not in ("fit", "reproduce", "suggest-k") or folder is None or not folder.exists():
        return "nothing was written"
    if args.command == "suggest-k":
        return f"its unfinished run in {folder} cannot be continued: run suggest-k again with another --out"
    from contraclust.run.folder import has_checkpoint, holds_run  # (torch's import: only after an interrupt)

    run = folder / "run" if args.command == "reproduce" else folder
    if has_checkpoint(run):
        again = f"contraclust fit --out {folder} --resume" if args.command == "fit" else "the same command and --resume"
        return f"the last checkpoint in {run} is kept: continue with {again}"
    if holds_run(run):
        return "no checkpoint had been written yet, so there is nothing to resume: the same command starts afresh"
    return "nothing was written"


def entry() -> None:
    """The ``contraclust`` program: :func:`main`, then an exit without the interpreter's teardown. Freeing
    every object of torch and its compiler one by one takes 1 to 2 s after a run, time outside any budget
    that a user still waits for; the files are written and closed by then, so the exit handlers run, the
    streams are flushed and the process ends."""
    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def seconds_since_process_start() -> float:
    """How long this process has been running (Linux: ``/proc``), 0 where that cannot be read; an age over
    two minutes means a long-lived interpreter (a notebook calling ``main()``), not a start-up, and counts 0."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime: clock ticks after boot
        age = float(Path("/proc/uptime").read_text().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return 0.0
    return age if 0.0 <= age <= 120.0 else 0.0


class Terminated(BaseException):
    """SIGTERM, as an exception: the run ends as after Ctrl-C (its lock released, its checkpoints kept)."""


def _terminated(signum, frame) -> None:
    raise Terminated()


if __name__ == "__main__":
    sys.exit(main())
