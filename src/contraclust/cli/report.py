"""``contraclust report``: the run's HTML report (also written at the end of every ``fit``)."""
from __future__ import annotations

from pathlib import Path

from contraclust.cli.common import add_data_args, add_threads_arg, load_run_data


def add_parser(sub) -> None:
    text = "write RUN_DIR/report.html: clusters with galleries, curves, confusion matrix, a map of the embeddings"
    cmd = sub.add_parser("report", help=text, description=text + ". Self-contained: open it from disk.")
    cmd.add_argument("run", type=Path, help="a run folder")
    add_data_args(cmd)
    cmd.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    add_threads_arg(cmd)


def run(args) -> int:
    from contraclust.errors import ContraclustError
    from contraclust.report.html import write_report
    from contraclust.training.checkpoint import load_checkpoint

    if not args.run.is_dir():
        raise ContraclustError(f"{args.run} is not a run folder")
    data, _ = load_run_data(args, load_checkpoint(args.run), args.run)
    print(f"wrote {write_report(args.run, data, args.device)}")
    return 0
