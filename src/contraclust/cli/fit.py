"""``contraclust fit``: train a method on data, or resume a run, and write its run folder."""
from __future__ import annotations

import argparse
import time

from contraclust.cli.common import metrics_line, reading_of
from contraclust.errors import ContraclustError
from contraclust.methods.prior import prior_overrides
from contraclust.prepare import prepare, read_data
from contraclust.request import FitRequest
from contraclust.run import Run, main_process, refuse_a_folder_inside_the_data, refuse_a_held_folder
from contraclust.training.device import resolve_device


def run(args: argparse.Namespace) -> int:
    """The arguments as a request, prepared into a new Run (or the run in --out resumed), fitted, printed."""
    started_at = getattr(args, "started_at", None) or time.monotonic()
    request = request_of(args, started_at)
    request.budget_seconds()  # a bad duration is refused before data is read
    if args.resume:
        if args.out is None:
            raise ContraclustError("--resume needs --out pointing at an earlier run folder (with config.json)")
        if args.init is not None:
            raise ContraclustError("--init starts a new run from given weights; it cannot be combined with --resume")

    if args.resume:
        run = Run.resume(args.out, lambda config: read_data(config.data, request.reading, config.augment.size, config,
                                                            device=args.device),
                         changes=_resume_changes(args, request), device=resolve_device(args.device),
                         overrides=prior_overrides(args.cluster_prior, args.prior_weight) + args.overrides,
                         started_at=started_at, report=request.report)
    else:
        refuse_a_folder_inside_the_data(args.out, args.data)  # before reading data; again when the run starts
        refuse_a_held_folder(args.out, args.force)
        prepared = prepare(request)
        args.out = prepared.out  # where an interrupt's message points (main.what_is_kept)
        run = Run.start(prepared.config, prepared.data, prepared.out, device=prepared.device, init=args.init,
                        started_at=started_at, report=request.report, force=args.force)
    result = run.fit()
    if main_process():
        if result.metrics:
            print(metrics_line(result.metrics) + f"  ({time.monotonic() - started_at:.0f} s in all)")
        print(f"wrote {run.folder}/metrics.json, assignments.csv, log.csv, checkpoints/")
    return 0


def request_of(args: argparse.Namespace, started_at: float | None = None):
    """``fit``'s arguments as a :class:`~contraclust.request.FitRequest` (the estimator makes the same from its
    parameters)."""
    return FitRequest(data=args.data, n_clusters=args.clusters, method=args.method, preset=args.preset,
                      budget=args.budget, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                      overrides=list(args.overrides), cluster_prior=args.cluster_prior, prior_weight=args.prior_weight,
                      uncertain_below=args.uncertain_below, reading=reading_of(args),
                      backbone="none" if args.no_pretrained else args.backbone, weights=args.weights,
                      freeze=args.freeze, download=args.download, init=args.init, out=args.out,
                      report=not args.no_report, device=args.device, started_at=started_at, then=args.then)


def _resume_changes(args: argparse.Namespace, request) -> dict:
    """What this command line asks a resumed run to change (None: as it was)."""
    return {"n_clusters": args.clusters, "method": args.method, "preset": args.preset, "data": args.data,
            "label_column": args.label_column, "id_column": args.id_column, "train.seed": args.seed,
            "train.batch_size": args.batch_size, "train.epochs": args.epochs,
            "train.budget_seconds": request.budget_seconds(),
            "train.progress": False if args.no_progress else None,
            "self_label.enabled": True if args.then == "self-label" else None}
