"""``contraclust suggest-k``: how many clusters? One run with heads of many K, label-free signals, a plot."""
from __future__ import annotations

import argparse
from pathlib import Path

from contraclust.cli.common import reading_of
from contraclust.prepare import prepare
from contraclust.request import FitRequest
from contraclust.run import refuse_a_folder_inside_the_data, refuse_a_held_folder
from contraclust.run.folder import fresh_run_folder
from contraclust.selection.suggest import format_table, parse_k_range, suggest_k, write_outputs


def run(args: argparse.Namespace) -> int:
    request = FitRequest(data=args.data, method="cc", budget=args.budget, epochs=args.epochs, seed=args.seed,
                         overrides=args.overrides, reading=reading_of(args), backbone="none", report=False,
                         device=args.device, started_at=getattr(args, "started_at", None), name_a_folder=False)
    request.budget_seconds()  # a bad budget and a bad range are refused before the data is read
    wanted = parse_k_range(args.k_range)
    request.out = args.out or fresh_run_folder(Path("runs") / "suggest-k")
    refuse_a_folder_inside_the_data(request.out, args.data)
    refuse_a_held_folder(request.out)
    request.n_clusters = max(wanted)
    prepared = prepare(request)
    ks = parse_k_range(args.k_range, len(prepared.data))
    result = suggest_k(prepared.data, ks, prepared.config, prepared.device, args.heads_per_k, request.started_at,
                       not args.no_progress, folder=request.out)
    written = write_outputs(result, request.out)
    train = result.train
    print(f"trained {train['epochs']} epochs of instance contrast and {train['c3_epochs']} of cross-instance "
          f"contrast, then {train['head_epochs']} epochs of {train['replicas']} heads per K on {train['views']} "
          f"embedded views, in {train['wall_seconds']:.0f} s")
    print(format_table(result))
    print(f"\nrecommended K = {result.recommended}: {result.reason}")
    print(f"ranking: {', '.join(map(str, result.ranking[:5]))}, ...")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
