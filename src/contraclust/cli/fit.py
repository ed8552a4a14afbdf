"""``contraclust fit``: train a method on data, or resume a run, and write its run folder."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from contraclust.cli.common import (
    add_backbone_args, add_data_args, add_device_args, add_pretrained_arg, metrics_line, override, reading_of,
    written_path,
)

EXAMPLES = """examples:
  contraclust fit                                   # the default job: MNIST-5k, auto recipe, 10 min on a CPU
  contraclust fit --data my_images/ -k 5            # any folder: auto recipe, 10 min on a CPU, 30 on a GPU
  contraclust fit --data my_images/ -k 5 --budget 1h --out runs/mine
  contraclust fit --method cc --budget 90s          # plain CC, within 90 seconds
  contraclust fit --data ../shared/datasets/cifar10 --preset cc-paper-cifar10 --device cuda
  contraclust fit --out runs/mine --resume           # continue a killed run exactly
  contraclust fit --data my_images/ -k 5 --no-report   # no report.html at the end
  contraclust fit --data emb.npy -k 20 --method clc    # feature vectors (.npy/.npz/.csv/.tsv/.parquet)
  contraclust fit --data my_images/ -k 10 --backbone dinov2-small --freeze --download   # fetch DINOv2 once
  contraclust fit --data my_photos/ -k 5 --no-pretrained   # from scratch, even with a backbone in the cache
  contraclust fit --data my_images/ -k 8 --cluster-prior estimated    # clusters of unequal sizes
"""


def add_parser(sub) -> None:
    from contraclust.methods import SUMMARIES
    from contraclust.presets import PRESETS

    fit = sub.add_parser("fit", help="train a clustering model and write a run folder",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
                         description="Train a method on data; writes config.json, log.csv, checkpoints/, "
                                     "assignments.csv, metrics.json and report.html into --out. Without --preset the auto "
                                     "recipe is chosen from the data and the device and sized by a time budget "
                                     "(10 minutes on a CPU, 30 on a GPU); `contraclust presets --data X` shows it.")
    add_data_args(fit)
    fit.add_argument("--method", choices=list(SUMMARIES), default=None,
                     help="clustering method (default: the recipe's; auto: c3, a CC stage then C3). " +
                     "; ".join(f"{n}: {summary}" for n, summary in SUMMARIES.items()))
    fit.add_argument("--preset", choices=["auto", *PRESETS], default=None, metavar="NAME",
                     help="named settings, used exactly as written (default: auto, chosen from the data and the "
                          "device). One of: auto, " + ", ".join(PRESETS))
    fit.add_argument("-k", "--clusters", type=int, default=None,
                     help="number of clusters K (default: one per class folder of --data, else 10; "
                          "`contraclust suggest-k` suggests one)")
    fit.add_argument("--budget", default=None, metavar="DURATION",
                     help="wall time for the whole run, e.g. 90s, 10m, 2h: the epochs are planned from the measured "
                          "speed so that training, evaluations and the final files end in time "
                          "(default: auto's 10 min on a CPU, 30 min on a GPU; named presets run their epochs)")
    fit.add_argument("--epochs", type=int, default=None,
                     help="a fixed number of epochs instead of a time budget (wins over --budget)")
    fit.add_argument("--batch-size", type=int, default=None, help="global batch size (default: the recipe's)")
    fit.add_argument("--seed", type=int, default=None, help="random seed (default: 42)")
    fit.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                     type=override,
                     help="override any config field, e.g. --set optim.lr=1e-3 --set augment.blur_p=0.5 "
                          "--set method.tau_instance=0.3 (repeatable; sections: augment, model, optim, train, method)")
    fit.add_argument("--out", type=written_path, default=None,
                     help="run folder (default: runs/<preset>-<method>-seed<seed>)")
    fit.add_argument("--force", action="store_true",
                     help="write a new run into --out even though it holds other files (beside them, never over "
                          "them; a folder holding a run is still refused)")
    fit.add_argument("--resume", action="store_true",
                     help="continue the run in --out from its newest checkpoint, with its saved config and its "
                          "time plan (--epochs may extend it)")
    fit.add_argument("--no-report", action="store_true",
                     help="do not write OUT/report.html (the clusters' galleries, curves and maps) at the end")
    fit.add_argument("--init", type=Path, default=None, metavar="RUN_OR_CHECKPOINT",
                     help="start from another run's weights (e.g. C3 from a CC run); --method c3 without it "
                          "trains a CC stage first, in OUT/cc-stage")
    fit.add_argument("--cluster-prior", choices=["uniform", "none", "estimated"], default=None,
                     help="what the balance term (CC's entropy, DRC's regulariser, CLC's Sinkhorn marginals) pulls the "
                          "cluster sizes towards: uniform (the papers'), none, or a prior estimated from the model's own "
                          "assignments with a floor so no cluster is emptied; for imbalanced data (default: uniform)")
    fit.add_argument("--prior-weight", type=float, default=None, metavar="W",
                     help="scales the balance term's weight (CLC: how strictly Sinkhorn meets the marginals, 0..1; "
                          "default 1)")
    fit.add_argument("--uncertain-below", type=float, default=None, metavar="P",
                     help="flag samples whose confidence is below P as uncertain in assignments.csv (default 0.5)")
    add_backbone_args(fit)
    fit.add_argument("--freeze", action="store_true",
                     help="with --backbone: embed the images once through the frozen backbone and cluster the vectors")
    add_pretrained_arg(fit)
    add_device_args(fit)


def run(args: argparse.Namespace) -> int:
    """The arguments as a request, prepared into a new Run (or the run in --out resumed), fitted, printed."""
    from contraclust.errors import ContraclustError

    started_at = getattr(args, "started_at", None) or time.monotonic()
    request = request_of(args, started_at)
    request.budget_seconds()  # a bad duration is refused before data is read
    if args.resume:
        if args.out is None:
            raise ContraclustError("--resume needs --out pointing at an earlier run folder (with config.json)")
        if args.init is not None:
            raise ContraclustError("--init starts a new run from given weights; it cannot be combined with --resume")
    from contraclust.methods.prior import prior_overrides
    from contraclust.prepare import prepare, read_data
    from contraclust.run import Run, main_process, refuse_a_folder_inside_the_data, refuse_a_held_folder
    from contraclust.training.device import resolve_device

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
    from contraclust.request import FitRequest

    return FitRequest(data=args.data, n_clusters=args.clusters, method=args.method, preset=args.preset,
                      budget=args.budget, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                      overrides=list(args.overrides), cluster_prior=args.cluster_prior, prior_weight=args.prior_weight,
                      uncertain_below=args.uncertain_below, reading=reading_of(args),
                      backbone="none" if args.no_pretrained else args.backbone, weights=args.weights,
                      freeze=args.freeze, download=args.download, init=args.init, out=args.out,
                      report=not args.no_report, device=args.device, started_at=started_at)


def _resume_changes(args: argparse.Namespace, request) -> dict:
    """What this command line asks a resumed run to change (None: as it was)."""
    return {"n_clusters": args.clusters, "method": args.method, "preset": args.preset, "data": args.data,
            "label_column": args.label_column, "id_column": args.id_column, "train.seed": args.seed,
            "train.batch_size": args.batch_size, "train.epochs": args.epochs,
            "train.budget_seconds": request.budget_seconds(),
            "train.progress": False if args.no_progress else None}
