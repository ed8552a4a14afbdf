"""``contraclust report``: the run's HTML report (also written at the end of every ``fit``), from what the run
wrote; with ``--data``, of the run's model on that data (read out here, then reported)."""
from __future__ import annotations

from contraclust.cli.common import load_run_data
from contraclust.errors import ContraclustError
from contraclust.report.html import write_report
from contraclust.training.checkpoint import load_checkpoint
from contraclust.training.inference import model_from_state, readout_of


def run(args) -> int:
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
