"""``contraclust report``: the run's HTML report (also written at the end of every ``fit``), from what the run
wrote; with ``--data``, of the run's model on that data (read out here, then reported)."""
from __future__ import annotations

from pathlib import Path

from contraclust.cli.common import add_data_args, add_threads_arg, load_run_data


def add_parser(sub) -> None:
    text = "write RUN_DIR/report.html: clusters with galleries, curves, confusion matrix, a map of the embeddings"
    cmd = sub.add_parser("report", help=text, description=text + ". Self-contained: open it from disk. It shows "
                         "what the run wrote when it finished; with --data, what its model makes of that data.")
    cmd.add_argument("run", type=Path, help="a run folder")
    add_data_args(cmd)
    cmd.add_argument("--device", default="auto", help="with --data: auto (CUDA if present), cpu, cuda or cuda:N")
    add_threads_arg(cmd)


def run(args) -> int:
    from contraclust.errors import ContraclustError
    from contraclust.report.html import write_report
    from contraclust.training.checkpoint import load_checkpoint
    from contraclust.training.inference import model_from_state, readout_of

    if not args.run.is_dir():
        raise ContraclustError(f"{args.run} is not a run folder")
    state = load_checkpoint(args.run)
    data, config = load_run_data(args, state, args.run)
    readout = None
    if args.data is not None:
        method = model_from_state(state, config, data.sample_shape, args.run)
        readout = readout_of(method, config, data, args.device)
    print(f"wrote {write_report(args.run, data, readout=readout)}")
    return 0
