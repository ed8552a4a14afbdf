"""Quality against epochs of a CC stage and then a C3 stage, on MNIST-5k, per seed.

    python benchmarks/stage_curves.py --seeds 0 1 --cc-epochs 50 --c3-epochs 20 --rows cc:10,25,50 c3:2,10,16
    python benchmarks/stage_curves.py --seeds 10 11 12 13 --cc-epochs 20 --c3-epochs 0 --rows cc:20 \\
        --set method.cluster_heads=5
    python benchmarks/stage_curves.py --seeds 0 --cc-epochs 2 --c3-epochs 1 --set model.width=8   # smoke

This is how the default job was chosen (docs/results.md, "How the default job was chosen"): the CC stage is the
``mnist5k-cpu`` preset (the auto recipe's network, views and optimiser for MNIST-5k) with a cosine over
``--cc-epochs``; the C3 stage fine-tunes it with ``mnist5k-cpu-c3`` (a tenth of the learning rate) for
``--c3-epochs``. ``--set`` applies to both stages. ``--rows STAGE:E1,E2`` names the epochs the table
shows (evaluated every gcd of them; default: every epoch of both stages); the table has one NMI and one ACC column
per seed and their means. Seeds run side by side, one process each with ``--threads`` threads (default
1: two one-thread runs use two cores about as well as one two-thread run).
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import time

import numpy as np
import torch

from contraclust.data import read_mnist5k
from contraclust.presets import build_config
from contraclust.training import Trainer


def parse_rows(items: list[str] | None, cc_epochs: int, c3_epochs: int) -> dict[str, list[int]]:
    """``["cc:10,25", "c3:2"]`` -> {"cc": [10, 25], "c3": [2]}; without ``--rows`` every epoch."""
    if not items:
        return {"cc": list(range(1, cc_epochs + 1)), "c3": list(range(1, c3_epochs + 1))}
    rows = {"cc": [], "c3": []}
    for item in items:
        stage, _, epochs = item.partition(":")
        if stage not in rows or not epochs:
            raise SystemExit(f"--rows takes STAGE:E1,E2 with STAGE cc or c3, got {item!r}")
        rows[stage] = sorted(int(e) for e in epochs.split(","))
    for stage, limit in (("cc", cc_epochs), ("c3", c3_epochs)):
        if any(not 1 <= e <= limit for e in rows[stage]):
            raise SystemExit(f"--rows {stage}: epochs must lie in 1..{limit}")
    return rows


def run_seed(seed: int, args, wanted: dict[str, list[int]]) -> list[dict]:
    torch.set_num_threads(args.threads)
    data = read_mnist5k()
    start = time.perf_counter()
    rows: list[dict] = []

    def record(stage: str):
        def on_epoch_end(row: dict) -> bool:
            if "nmi" in row and row["epoch"] in wanted[stage]:
                rows.append({"seed": seed, "stage": stage, "epoch": row["epoch"],
                             "seconds": time.perf_counter() - start, **{k: row[k] for k in ("nmi", "acc", "ari")}})
                print(f"seed {seed} {stage} epoch {row['epoch']:3d}  {rows[-1]['seconds']:6.0f} s  NMI {row['nmi']:.4f}  "
                      f"ACC {row['acc']:.4f}  ARI {row['ari']:.4f}", flush=True)
            return False
        return on_epoch_end

    def config(method: str, epochs: int):
        every = math.gcd(*wanted[method]) if wanted[method] else epochs  # evaluates every epoch the table shows
        return build_config(method, "mnist5k-cpu", epochs=epochs, seed=seed,
                            overrides=["train.progress=false", f"train.eval_every={every}"] + args.overrides)

    trainer = Trainer(config("cc", args.cc_epochs), data, None, args.device)
    trainer.fit(on_epoch_end=record("cc"))
    if args.c3_epochs:
        Trainer(config("c3", args.c3_epochs), data, None, args.device,
                init_state=trainer.method.state_dict()).fit(on_epoch_end=record("c3"))
    return rows


def table(rows: list[dict], seeds: list[int]) -> list[str]:
    """One row per (stage, epoch): NMI per seed, ACC per seed, and the means over the seeds."""
    head = (["stage", "epoch"] + [f"NMI seed {s}" for s in seeds] + [f"ACC seed {s}" for s in seeds]
            + ["mean NMI", "mean ACC", "wall s"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for stage, epoch in sorted({(r["stage"], r["epoch"]) for r in rows}, key=lambda k: (k[0] != "cc", k[1])):
        by_seed = {r["seed"]: r for r in rows if (r["stage"], r["epoch"]) == (stage, epoch)}
        if set(by_seed) != set(seeds):
            continue
        cells = [f"{by_seed[s][k]:.3f}" for k in ("nmi", "acc") for s in seeds]
        means = [f"{np.mean([by_seed[s][k] for s in seeds]):.3f}" for k in ("nmi", "acc")]
        wall = f"{np.mean([by_seed[s]['seconds'] for s in seeds]):.0f}"
        lines.append("| " + " | ".join([stage, str(epoch), *cells, *means, wall]) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--cc-epochs", type=int, default=50)
    parser.add_argument("--c3-epochs", type=int, default=20)
    parser.add_argument("--rows", nargs="+", default=None, metavar="STAGE:EPOCHS",
                        help="the epochs the table shows, e.g. cc:10,25,50 c3:2,10,16 (default: every epoch)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per seed's process (default 1)")
    parser.add_argument("--parallel", type=int, default=2, help="seeds run side by side (default 2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    wanted = parse_rows(args.rows, args.cc_epochs, args.c3_epochs)

    jobs = [(seed, args, wanted) for seed in args.seeds]
    if min(args.parallel, len(args.seeds)) <= 1:
        parts = [run_seed(*job) for job in jobs]
    else:
        with multiprocessing.get_context("spawn").Pool(min(args.parallel, len(args.seeds))) as pool:
            parts = pool.starmap(run_seed, jobs)
    rows = [row for part in parts for row in part]
    print(f"\nseeds {args.seeds}, {args.threads} thread(s) each, {args.parallel} side by side; "
          f"--set {args.overrides or 'none'}:")
    print("\n".join(table(rows, args.seeds)))


if __name__ == "__main__":
    main()
