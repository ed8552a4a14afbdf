"""``contraclust evaluate`` and ``contraclust predict``: a trained run applied to data."""
from __future__ import annotations

import json

from contraclust.cli.common import load_run_data, metrics_line, output_file, refuse_writing_into
from contraclust.console import say
from contraclust.errors import ContraclustError
from contraclust.metrics import evaluate_clustering
from contraclust.report.assignments import sort_into_folders
from contraclust.training.checkpoint import load_checkpoint
from contraclust.training.inference import predict_checkpoint
from contraclust.training.outputs import write_assignments


def run_evaluate(args) -> int:
    data = load_run_data(args, _checkpoint(args), args.checkpoint, need_labels=True)[0]
    labels, _, config = predict_checkpoint(args.checkpoint, data, args.device)
    classes = len(set(data.labels.tolist()))
    if classes != config.n_clusters:
        say(f"warning: the run has {config.n_clusters} clusters and the data {classes} classes: ACC matches at most "
            f"{min(classes, config.n_clusters)} of them, and NMI and ARI compare partitions of different sizes")
    metrics = evaluate_clustering(data.labels, labels)
    print(json.dumps(metrics) if args.json else metrics_line(metrics))
    return 0


def run_predict(args) -> int:
    target = args.copy_into or args.link_into
    state = _checkpoint(args)
    data_spec = _data_spec(args, state)
    refuse_writing_into(args.output, data_spec, "--output")
    output_file(args.output)
    if not 0.0 <= args.min_confidence <= 1.0:
        raise ContraclustError(f"--min-confidence must lie in [0, 1], got {args.min_confidence}")
    if target is not None:
        refuse_writing_into(target, data_spec, "--copy-into" if args.copy_into else "--link-into")
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise ContraclustError(f"{target} exists and is not an empty folder; choose a new one")
    data = _load_for_checkpoint(args, state)
    paths = getattr(data, "paths", None)
    if target is not None and not paths:
        raise ContraclustError("--copy-into/--link-into sort image files: give --data a folder of images")
    labels, probabilities, config = predict_checkpoint(args.checkpoint, data, args.device)
    threshold = config.uncertain_below if args.uncertain_below is None else args.uncertain_below
    if not 0.0 <= threshold <= 1.0:
        raise ContraclustError(f"--uncertain-below must lie in [0, 1], got {threshold}")
    uncertain = write_assignments(args.output, labels, probabilities, data.labels, paths, getattr(data, "ids", None),
                                  threshold)
    print(f"wrote {len(labels)} assignments to {args.output} ({uncertain} uncertain: confidence below {threshold:g})")
    if target is not None:
        counts = sort_into_folders(paths, labels, probabilities.max(axis=1), target, probabilities.shape[1],
                                   link=args.link_into is not None, min_confidence=args.min_confidence)
        how = "linked" if args.link_into is not None else "copied"
        print(f"{how} {sum(counts.values())} images into {target}: "
              + ", ".join(f"{folder} {n}" for folder, n in counts.items()))
    return 0


def _checkpoint(args) -> dict:

    return load_checkpoint(args.checkpoint)


def _data_spec(args, state: dict):
    """The data the command reads: ``--data``, else the run's own (its absolute path)."""
    return args.data if args.data is not None else state["config"].get("data")


def _load_for_checkpoint(args, state: dict):
    return load_run_data(args, state, args.checkpoint)[0]
