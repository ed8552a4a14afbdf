"""The ``contraclust`` command line: fit, evaluate, predict, views, plus listings of methods and presets.

Exit codes: 0 success, 1 a run or data error (one line on stderr, no traceback), 2 bad usage,
130 interrupted (the last checkpoint is kept; continue with ``fit --out DIR --resume``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EPILOG = """examples:
  contraclust fit                                   # CC on the embedded MNIST-5k, CPU preset
  contraclust fit --data ../shared/datasets/cifar10 --preset cc-paper-cifar10 --device cuda
  contraclust fit --data my_images/ -k 5 --epochs 50 --out runs/mine
  contraclust fit --out runs/mine --resume           # continue a killed run exactly
  contraclust evaluate runs/mine --data my_images/
  contraclust predict runs/mine --data my_images/ --output clusters.csv
"""


def build_parser() -> argparse.ArgumentParser:
    from contraclust.methods import METHODS
    from contraclust.presets import PRESETS

    parser = argparse.ArgumentParser(
        prog="contraclust", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Contrastive deep clustering of images or feature vectors.\n\nmethods:\n"
        + "\n".join(f"  {name:5s} {cls.summary}" for name, cls in METHODS.items()),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    fit = sub.add_parser("fit", help="train a clustering model and write a run folder",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                         description="Train a method on data; writes config.json, log.csv, checkpoints/, "
                                     "assignments.csv and metrics.json into --out.")
    _add_data_args(fit)
    fit.add_argument("--method", choices=list(METHODS), default=None,
                     help="clustering method (default: the preset's, cc). " +
                     "; ".join(f"{n}: {c.summary}" for n, c in METHODS.items()))
    fit.add_argument("--preset", choices=list(PRESETS), default=None, metavar="NAME",
                     help="named settings; default: mnist5k-cpu for digits, features-cpu for vectors, "
                          "cc-paper-cifar10 otherwise. One of: " + ", ".join(PRESETS))
    fit.add_argument("-k", "--clusters", type=int, default=None, help="number of clusters K (default: the preset's)")
    fit.add_argument("--epochs", type=int, default=None, help="training epochs (default: the preset's)")
    fit.add_argument("--batch-size", type=int, default=None, help="global batch size (default: the preset's)")
    fit.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's, 42)")
    fit.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                     help="override any config field, e.g. --set optim.lr=1e-3 --set augment.blur_p=0.5 "
                          "--set method.tau_instance=0.3 (repeatable; sections: augment, model, optim, train, method)")
    fit.add_argument("--out", type=Path, default=None,
                     help="run folder (default: runs/<preset>-<method>-seed<seed>)")
    fit.add_argument("--resume", action="store_true",
                     help="continue the run in --out from its newest checkpoint, with its saved config "
                          "(--epochs may extend it)")
    fit.add_argument("--init", type=Path, default=None, metavar="RUN_OR_CHECKPOINT",
                     help="start from another run's weights (e.g. C3 from a CC run); --method c3 without it "
                          "trains a CC stage first, in OUT/cc-stage")
    _add_device_args(fit)

    for name, text in (("evaluate", "score a trained model against the data's labels (NMI, ACC, ARI)"),
                       ("predict", "write cluster assignments (index, cluster, confidence) as CSV")):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("checkpoint", type=Path, help="a run folder or a checkpoint file (epoch_NNNN.pt)")
        _add_data_args(cmd)
        _add_device_args(cmd)
        if name == "predict":
            cmd.add_argument("--output", type=Path, default=Path("assignments.csv"), help="CSV file to write")
        else:
            cmd.add_argument("--json", action="store_true", help="print the metrics as JSON")

    views = sub.add_parser("views", help="save a picture of augmented views of a batch",
                           description="Save a grid: each column an image, then two augmented views of it.")
    _add_data_args(views)
    views.add_argument("--preset", choices=list(PRESETS), default=None, metavar="NAME", help="whose augmentation")
    views.add_argument("-n", type=int, default=8, help="how many images")
    views.add_argument("--seed", type=int, default=0)
    views.add_argument("--output", type=Path, default=Path("views.png"))

    sub.add_parser("methods", help="list the methods")
    sub.add_parser("presets", help="list the presets")
    return parser


def _add_data_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--data", default=None, metavar="PATH_OR_NAME",
                     help="mnist5k (default, embedded), digits, a folder of images (class sub-folders or flat), "
                          "a CIFAR pickle folder (cifar-10-batches-py), or an .npy/.npz file")
    cmd.add_argument("--image-size", type=int, default=None,
                     help="resize images of a folder to this square size when loading (default: keep their size, "
                          "shrinking any larger than the preset's input size)")


def _add_device_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    cmd.add_argument("--no-progress", action="store_true", help="no progress bars")


def cmd_fit(args: argparse.Namespace) -> int:
    from contraclust.config import config_from_dict
    from contraclust.data import load_data
    from contraclust.presets import build_config, default_preset_for, get_preset
    from contraclust.errors import ContraclustError
    from contraclust.training.stages import fit_run
    from contraclust.training.trainer import check_data

    if args.resume:
        if args.out is None or not (args.out / "config.json").exists():
            raise ContraclustError("--resume needs --out pointing at an earlier run folder (with config.json)")
        config = config_from_dict(json.loads((args.out / "config.json").read_text()))
        if args.epochs is not None:
            config.train.epochs = args.epochs
        if args.no_progress:
            config.train.progress = False
        data = _load(config.data, args, config.augment.size)
    else:
        preset_guess = get_preset(args.preset or default_preset_for(args.data))
        data = _load(args.data, args, preset_guess.augment.size)
        config = build_config(args.method, args.preset, args.data, data.is_image, args.clusters, args.epochs,
                              args.batch_size, args.seed,
                              args.overrides + (["train.progress=false"] if args.no_progress else []),
                              data.sample_shape)
        if args.out is None:
            default = Path("runs") / f"{config.preset}-{config.method}-seed{config.train.seed}"
            # under torchrun every rank must name the same folder, so no de-duplicating suffix there
            args.out = default if int(os.environ.get("WORLD_SIZE", "1")) > 1 else _fresh_run_folder(default)
        if (args.out / "checkpoints").is_dir() and any((args.out / "checkpoints").iterdir()):
            raise ContraclustError(f"{args.out} already holds a run; continue it with --resume or choose another --out")
    check_data(config, data)
    main_process = int(os.environ.get("RANK", "0")) == 0
    if main_process:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "config.json").write_text(config.to_json())
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if main_process else (lambda text: None)
    say(f"{config.method} on {data.name}: {len(data)} samples, K={config.n_clusters}, preset {config.preset}, "
        f"{config.train.epochs} epochs, run folder {args.out}")
    _, result = fit_run(config, data, args.out, args.device, args.init, args.resume, say)
    if main_process:
        _save_curves(args.out)
        if result.metrics:
            print(_metrics_line(result.metrics) + f"  ({result.wall_seconds:.0f} s)")
        print(f"wrote {args.out}/metrics.json, assignments.csv, log.csv, checkpoints/")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from contraclust.api import predict_checkpoint
    from contraclust.errors import DataError
    from contraclust.metrics import evaluate_clustering

    data = _load_for_checkpoint(args)
    if data.labels is None:
        raise DataError(f"{data.name} has no labels to evaluate against (use class sub-folders or a y array)")
    labels, _, _ = predict_checkpoint(args.checkpoint, data, args.device)
    metrics = evaluate_clustering(data.labels, labels)
    print(json.dumps(metrics) if args.json else _metrics_line(metrics))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from contraclust.api import predict_checkpoint
    from contraclust.training.trainer import write_assignments

    data = _load_for_checkpoint(args)
    labels, probabilities, _ = predict_checkpoint(args.checkpoint, data, args.device)
    write_assignments(args.output, labels, probabilities, data.labels)
    print(f"wrote {len(labels)} assignments to {args.output}")
    return 0


def cmd_views(args: argparse.Namespace) -> int:
    from contraclust.presets import default_preset_for, get_preset
    from contraclust.report.plots import save_view_grid

    config = get_preset(args.preset or default_preset_for(args.data))
    data = _load(args.data, args, config.augment.size)
    save_view_grid(data, config.augment, args.output, n=args.n, seed=args.seed)
    print(f"wrote {args.output}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from contraclust.methods import METHODS
    from contraclust.presets import PRESETS

    rows = {n: c.summary for n, c in METHODS.items()} if args.command == "methods" else \
        {n: text for n, (_, text) in PRESETS.items()}
    width = max(map(len, rows))
    for name, text in rows.items():
        print(f"{name:{width}s}  {text}")
    return 0


def _load(spec, args, max_size):
    from contraclust.data import load_data

    return load_data(spec, image_size=args.image_size, max_size=max_size, progress=not args.no_progress
                     if hasattr(args, "no_progress") else True)


def _load_for_checkpoint(args):
    from contraclust.config import config_from_dict
    from contraclust.training.checkpoint import load_checkpoint

    config = config_from_dict(load_checkpoint(args.checkpoint)["config"])
    return _load(args.data if args.data is not None else config.data, args, config.augment.size)


def _fresh_run_folder(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``... whichever does not exist yet."""
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _metrics_line(metrics: dict) -> str:
    return "  ".join(f"{k.upper()} {metrics[k]:.4f}" for k in ("nmi", "acc", "ari"))


def _save_curves(out: Path) -> None:
    try:
        from contraclust.report.plots import plot_training_log

        plot_training_log(out / "log.csv", out / "curves.png")
    except ImportError:
        pass


COMMANDS = {"fit": cmd_fit, "evaluate": cmd_evaluate, "predict": cmd_predict, "views": cmd_views,
            "methods": cmd_list, "presets": cmd_list}


def main(argv: list[str] | None = None) -> int:
    from contraclust.errors import ContraclustError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except ContraclustError as exc:
        print(f"contraclust: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("contraclust: interrupted; the last checkpoint is kept (continue with fit --out DIR --resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
