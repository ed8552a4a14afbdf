"""Quality against epochs and wall time of a CC stage and then a C3 stage, on MNIST-5k, over seeds.

    python benchmarks/stage_curves.py --seeds 0 1 --cc-epochs 50 --c3-epochs 20       # C3's curve after CC
    python benchmarks/stage_curves.py --seeds 10 11 12 13 --cc-epochs 20 --c3-epochs 0 --set method.cluster_heads=5
    python benchmarks/stage_curves.py --seeds 0 --cc-epochs 2 --c3-epochs 1 --eval-every 1 --set model.width=8  # smoke

This is how the default job was chosen (README, "How the default job was chosen"): the CC stage is the
``mnist5k-cpu`` preset (the auto recipe's network, views and optimiser for MNIST-5k) with a cosine over
``--cc-epochs``; the C3 stage fine-tunes it with ``mnist5k-cpu-c3`` (a tenth of the learning rate) for
``--c3-epochs``. ``--set`` applies to both stages. The wall time is the process's so far, evaluations
included. ``--threads`` sets torch's threads (two runs of one thread side by side use two cores about as
well as one run of two does).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from contraclust.data import read_mnist5k
from contraclust.presets import build_config
from contraclust.training import Trainer


def run_seed(seed: int, args) -> list[dict]:
    data = read_mnist5k()
    start = time.perf_counter()
    rows: list[dict] = []

    def record(stage: str):
        def on_epoch_end(row: dict) -> bool:
            if "nmi" in row:
                rows.append({"seed": seed, "stage": stage, "epoch": row["epoch"],
                             "seconds": time.perf_counter() - start, **{k: row[k] for k in ("nmi", "acc", "ari")}})
                print(f"seed {seed} {stage} epoch {row['epoch']:3d}  {rows[-1]['seconds']:6.0f} s  NMI {row['nmi']:.4f}  "
                      f"ACC {row['acc']:.4f}  ARI {row['ari']:.4f}", flush=True)
            return False
        return on_epoch_end

    common = ["train.progress=false", f"train.eval_every={args.eval_every}"] + args.overrides
    cc = build_config("cc", "mnist5k-cpu", epochs=args.cc_epochs, seed=seed, overrides=common)
    trainer = Trainer(cc, data, None, args.device)
    trainer.fit(on_epoch_end=record("cc"))
    if args.c3_epochs:
        c3 = build_config("c3", "mnist5k-cpu", epochs=args.c3_epochs, seed=seed, overrides=common)
        Trainer(c3, data, None, args.device, init_state=trainer.method.state_dict()).fit(on_epoch_end=record("c3"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--cc-epochs", type=int, default=50)
    parser.add_argument("--c3-epochs", type=int, default=20)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = [row for seed in args.seeds for row in run_seed(seed, args)]
    print(f"\nmean over seeds {args.seeds} ({torch.get_num_threads()} threads; --set {args.overrides or 'none'}):")
    print("| stage | epoch | NMI | ACC | ARI | wall s |\n|---|---|---|---|---|---|")
    for stage, epoch in sorted({(r["stage"], r["epoch"]) for r in rows}, key=lambda k: (k[0] != "cc", k[1])):
        same = [r for r in rows if (r["stage"], r["epoch"]) == (stage, epoch)]
        if len(same) == len(args.seeds):
            mean = {k: float(np.mean([r[k] for r in same])) for k in ("nmi", "acc", "ari", "seconds")}
            print(f"| {stage} | {epoch} | {mean['nmi']:.3f} | {mean['acc']:.3f} | {mean['ari']:.3f} | {mean['seconds']:.0f} |")


if __name__ == "__main__":
    main()
