"""``contraclust suggest-k``: how many clusters? One run with heads of many K, label-free signals, a plot."""
from __future__ import annotations

import argparse
from pathlib import Path

from contraclust.cli.common import add_data_args, add_device_args, override, reading_of, written_path

EXAMPLES = """examples:
  contraclust suggest-k --range 2:30                      # MNIST-5k, the auto recipe's network, 10 min on a CPU
  contraclust suggest-k --data my_images/ --range 2:20 --budget 5m --out runs/k
  contraclust suggest-k --data emb.npy --range 5,10,20,40
"""


def add_parser(sub) -> None:
    cmd = sub.add_parser(
        "suggest-k", help="suggest the number of clusters: one run with cluster heads for every K in a range",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Trains one network (the auto recipe's model and views) with losses that name no K (CC's "
                    "instance contrast, then C3's cross-instance contrast), then two cluster heads for every K in "
                    "--range on its frozen features, and measures per K what needs no labels: assignment confidence and "
                    "entropy, cluster-size spread, agreement of two augmented views, stability (agreement of the "
                    "two heads), silhouette on the learned features; with labels also NMI/ACC/ARI, never used to "
                    "choose. Recommends the K with the highest stability x view agreement x silhouette and says "
                    "why. Writes OUT/suggest_k.md, suggest_k.json and suggest_k.png.")
    add_data_args(cmd)
    cmd.add_argument("--range", dest="k_range", default="2:30", metavar="LOW:HIGH",
                     help="the K to compare: LOW:HIGH, LOW:HIGH:STEP or K1,K2,... (default 2:30)")
    cmd.add_argument("--budget", default=None, metavar="DURATION",
                     help="wall time for the training, e.g. 5m (default: the auto recipe's, 10 min on a CPU)")
    cmd.add_argument("--epochs", type=int, default=None, help="a fixed number of epochs instead of a budget")
    cmd.add_argument("--heads-per-k", type=int, default=2, help="heads per K, started apart (default 2)")
    cmd.add_argument("--seed", type=int, default=None, help="random seed (default 42)")
    cmd.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                     type=override,
                     help="override a config field of the training, e.g. --set train.batch_size=128")
    cmd.add_argument("--out", type=written_path, default=None,
                     help="output folder, a run folder of its own (default: runs/suggest-k, numbered when taken)")
    add_device_args(cmd)


def run(args: argparse.Namespace) -> int:
    from contraclust.prepare import prepare
    from contraclust.request import FitRequest
    from contraclust.run import refuse_a_folder_inside_the_data, refuse_a_held_folder
    from contraclust.selection.suggest import format_table, parse_k_range, suggest_k, write_outputs
    from contraclust.run.folder import fresh_run_folder

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
