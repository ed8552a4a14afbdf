"""``contraclust reproduce``: a paper's benchmark under its preset, paper against measured."""
from __future__ import annotations

import argparse
from pathlib import Path

from contraclust.errors import ContraclustError
from contraclust.reproduce import RUN_FOLDER, format_report, reproduce
from contraclust.run import refuse_a_held_folder
from contraclust.run.folder import fresh_run_folder
from contraclust.training.budget import parse_duration


def run(args: argparse.Namespace) -> int:
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
