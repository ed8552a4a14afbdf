"""``contraclust reproduce``: a paper's benchmark under its preset, paper against measured."""
from __future__ import annotations

import argparse
from pathlib import Path

from contraclust.cli.common import add_device_args, override, positive_int, written_path

EXAMPLES = """examples:
  contraclust reproduce --method cc --dataset cifar10 --data ../shared/datasets/cifar10 --limit 500 --epochs 1
  contraclust reproduce --method cc --dataset cifar10 --data cifar10/ --budget 10m --preset cifar10-fast --device cuda
  contraclust reproduce --method cc --dataset stl10 --data stl10_binary/ --device cuda     # 1000 epochs, as CC
  contraclust reproduce --method cc --dataset cifar10 --data cifar10/ --checkpoint runs/mine   # evaluate only
"""


def add_parser(sub) -> None:
    from contraclust.data.benchmarks import BENCHMARKS
    from contraclust.methods import METHOD_NAMES

    cmd = sub.add_parser(
        "reproduce", help="train (or evaluate) a method on a paper's benchmark and compare with the paper",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Trains METHOD on DATASET under the paper's protocol and preset (default: METHOD-paper-DATASET), "
                    "then prints the paper's NMI/ACC/ARI beside the measured ones at the last and at the best "
                    "evaluated epoch, with epochs, images/s and wall time; writes OUT/reproduce.json, "
                    "OUT/reproduce.md and the training run in OUT/run. Expected layouts: "
                    + "; ".join(f"{name}: {b.layout}" for name, b in BENCHMARKS.items()))
    cmd.add_argument("--method", required=True, choices=METHOD_NAMES, help="the method to reproduce")
    cmd.add_argument("--dataset", required=True, choices=list(BENCHMARKS), help="the paper benchmark")
    cmd.add_argument("--data", required=True, type=Path, metavar="PATH", help="where the benchmark lies on disk")
    cmd.add_argument("--preset", default=None, metavar="NAME",
                     help="settings to train with (default: METHOD-paper-DATASET; see contraclust presets)")
    length = cmd.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive_int, default=None, help="train this many epochs (default: the "
                                                                           "preset's, e.g. CC's 1000)")
    length.add_argument("--budget", default=None, metavar="DURATION", help="train within this wall time, e.g. 10m")
    cmd.add_argument("--limit", type=positive_int, default=None, metavar="N",
                     help="a stratified subset of N images (fixed seed), for smoke tests")
    cmd.add_argument("--checkpoint", type=Path, default=None, metavar="RUN_OR_CHECKPOINT",
                     help="evaluate this trained model instead of training")
    cmd.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's, 42)")
    cmd.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                     type=override,
                     help="override a preset field, e.g. --set train.eval_every=5 (repeatable)")
    cmd.add_argument("--out", type=written_path, default=None,
                     help="output folder (default: runs/reproduce-METHOD-DATASET, numbered when taken)")
    cmd.add_argument("--resume", action="store_true", help="continue the training run in --out after a kill")
    add_device_args(cmd)


def run(args: argparse.Namespace) -> int:
    from contraclust.errors import ContraclustError
    from contraclust.reproduce import RUN_FOLDER, format_report, reproduce
    from contraclust.run import refuse_a_held_folder
    from contraclust.training.budget import parse_duration
    from contraclust.run.folder import fresh_run_folder

    if args.budget is not None:
        parse_duration(args.budget)
    if args.resume and (args.out is None or args.checkpoint is not None):
        raise ContraclustError("--resume needs --out naming the earlier reproduce folder (and no --checkpoint)")
    out = args.out or fresh_run_folder(Path("runs") / f"reproduce-{args.method}-{args.dataset}")
    if args.checkpoint is None and not args.resume:
        refuse_a_held_folder(out / RUN_FOLDER)  # before the benchmark is read; again when the run starts
    report = reproduce(args.method, args.dataset, args.data, out, preset=args.preset, epochs=args.epochs,
                       budget=args.budget, limit=args.limit, checkpoint=args.checkpoint, device=args.device,
                       seed=args.seed, resume=args.resume, overrides=args.overrides,
                       progress=not args.no_progress, started_at=getattr(args, "started_at", None))
    print(format_report(report))
    print(f"\nwrote {out}/reproduce.json and reproduce.md")
    return 0
