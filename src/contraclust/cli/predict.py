"""``contraclust evaluate`` and ``contraclust predict``: a trained run applied to data."""
from __future__ import annotations

import json
from pathlib import Path

from contraclust.cli.common import add_data_args, add_device_args, load, metrics_line, output_file


def add_parsers(sub) -> None:
    for name, text in (("evaluate", "score a trained model against the data's labels (NMI, ACC, ARI)"),
                       ("predict", "write cluster assignments (index, cluster, confidence) as CSV")):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("checkpoint", type=Path, help="a run folder or a checkpoint file (epoch_NNNN.pt)")
        add_data_args(cmd)
        add_device_args(cmd)
        if name == "predict":
            cmd.add_argument("--output", type=Path, default=Path("assignments.csv"), help="CSV file to write")
        else:
            cmd.add_argument("--json", action="store_true", help="print the metrics as JSON")


def run_evaluate(args) -> int:
    from contraclust.api import predict_checkpoint
    from contraclust.errors import DataError
    from contraclust.metrics import evaluate_clustering

    data = _load_for_checkpoint(args)
    if data.labels is None:
        raise DataError(f"{data.name} has no labels to evaluate against (use class sub-folders or a y array)")
    labels, _, _ = predict_checkpoint(args.checkpoint, data, args.device)
    metrics = evaluate_clustering(data.labels, labels)
    print(json.dumps(metrics) if args.json else metrics_line(metrics))
    return 0


def run_predict(args) -> int:
    from contraclust.api import predict_checkpoint
    from contraclust.training.trainer import write_assignments

    output_file(args.output)
    data = _load_for_checkpoint(args)
    labels, probabilities, _ = predict_checkpoint(args.checkpoint, data, args.device)
    write_assignments(args.output, labels, probabilities, data.labels)
    print(f"wrote {len(labels)} assignments to {args.output}")
    return 0


def _load_for_checkpoint(args):
    from contraclust.config import config_from_dict
    from contraclust.training.checkpoint import load_checkpoint

    config = config_from_dict(load_checkpoint(args.checkpoint)["config"])
    return load(args.data if args.data is not None else config.data, args, config.augment.size)
