"""Colour photos from scratch on a CPU: the auto recipe against variants of it, over seeds, with the
quality-against-time curve of each run.

    python benchmarks/photo_recipe.py                       # default vs batch 256 + crops 8-100%, 3 seeds, 10 min
    python benchmarks/photo_recipe.py --arms old-default old+batch-256 --seeds 0 --budget 3m   # a screen
    python benchmarks/photo_recipe.py --arms default --seeds 0 --budgets 2m 5m         # the budget curve
    python benchmarks/photo_recipe.py --classes dog frog horse ship truck --seeds 0    # another photo set
    python benchmarks/photo_recipe.py --arms without-self-label with-self-label --budget 4m   # the stage

The set is that of ``benchmarks/auto_folders.py``: 5 CIFAR-10 classes, 1,000 images each, upscaled to 64 px
and written as JPEG class folders (from ../shared/datasets/cifar10). Each arm is ``contraclust fit --data
photos -k 5 --no-pretrained --budget B`` plus its ``--set`` overrides, one process per run, scored from
its ``assignments.csv`` against the labels the script kept; its log.csv gives NMI after every epoch
against the run's wall time (the curve within one run, whose schedule is planned for the whole budget).
``--budgets`` adds runs of the default recipe at shorter budgets: the curve of what each budget buys.
"""
from __future__ import annotations

import argparse
import csv
import os
import tempfile
from pathlib import Path

import numpy as np

from auto_folders import DEFAULT_CIFAR, PHOTO_CLASSES, fit, write_photos
from common import mean_spread
from contraclust.metrics import evaluate_clustering

# Each arm: --set overrides on top of the current auto recipe, written out in full so that an arm means
# the same whatever the default is. The first screen changed OLD (batch 64, crops of 20-100%: the photo
# recipe before the screen, and the default again since "batch-256+crop-0.08" lost on a second set of
# classes); the second screen changed B256 (docs/results.md, "Colour photos from scratch").
OLD = ["train.batch_size=64", "augment.crop_scale=[0.2,1.0]"]
B256 = ["train.batch_size=256", "augment.crop_scale=[0.08,1.0]"]
MINED = ["augment.neighbours=10", "augment.neighbour_refresh=5"]
ARMS: dict[str, list[str]] = {
    "default": [],
    "old-default": OLD,
    "old+mined-start-0.5": OLD + MINED + ["augment.neighbour_start=0.5"],
    "old+mined-start-0.25": OLD + MINED + ["augment.neighbour_start=0.25"],
    "old+crop-0.35": OLD + ["augment.crop_scale=[0.35,1.0]"],
    "old+jitter-1.0": OLD + ["augment.jitter_strength=1.0"],
    "old+width-64": OLD + ["model.width=64"],
    "old+batch-256": OLD + ["train.batch_size=256"],
    "old+batch-512": OLD + ["train.batch_size=512"],
    "old+batch-256+width-64+jitter-1.0": OLD + ["train.batch_size=256", "model.width=64", "augment.jitter_strength=1.0"],
    "batch-256+crop-0.08": B256,
    "b256+tau-0.2": B256 + ["method.tau_instance=0.2"],
    "b256+lr-0.002": B256 + ["optim.lr=0.002"],
    "b256+size-24": B256 + ["augment.size=24"],
    "b256+concat-views": B256 + ["method.views_forward=concat"],
    "b256+jitter-1.0": B256 + ["augment.jitter_strength=1.0"],
    "b256+width-48": B256 + ["model.width=48"],
    "without-self-label": ["self_label.enabled=false"],
    "with-self-label": ["self_label.enabled=true"],  # --then self-label: its last quarter of the budget
}


def read_log(run: Path) -> tuple[list[tuple[float, float]], int]:
    """(wall seconds, NMI) after each evaluated epoch of a run's log.csv, and its number of epochs."""
    with open(run / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    return [(float(r["wall_seconds"]), float(r["nmi"])) for r in rows if r.get("nmi")], len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", nargs="+", default=["default", "batch-256+crop-0.08"], choices=sorted(ARMS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", default="10m")
    parser.add_argument("--budgets", nargs="*", default=[], help="extra budgets for the default recipe, seed 0")
    parser.add_argument("--cifar", type=Path, default=DEFAULT_CIFAR)
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--classes", nargs="+", default=PHOTO_CLASSES, metavar="CLASS",
                        help="CIFAR-10 classes of the set (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="contraclust-photos-"))
    photos, labels = write_photos(workdir / "data", args.cifar, args.per_class, args.classes)
    print(f"{photos}: {len(labels)} photos of {', '.join(sorted(args.classes))}, 64 px; budget {args.budget}",
          flush=True)
    results: dict[str, list[dict]] = {}
    runs = [(arm, seed, args.budget) for arm in args.arms for seed in args.seeds]
    runs += [("default", args.seeds[0], budget) for budget in args.budgets]
    for arm, seed, budget in runs:
        out = workdir / f"{arm}-{budget}-seed{seed}"
        clusters, wall, notes = fit(photos, len(args.classes), out, budget, seed,
                                    ["--no-pretrained"] + [a for o in ARMS[arm] for a in ("--set", o)])
        evaluated, epochs = read_log(out)
        measured = {**evaluate_clustering(labels, clusters), "wall": wall, "curve": evaluated, "epochs": epochs}
        results.setdefault(f"{arm} {budget}", []).append(measured)
        points = ", ".join(f"{t:.0f}s {v:.3f}" for t, v in measured["curve"][:: max(1, len(measured["curve"]) // 8)])
        print(f"{arm} {budget} seed {seed}: NMI {measured['nmi']:.4f} ACC {measured['acc']:.4f} "
              f"ARI {measured['ari']:.4f} in {wall:.0f} s, {epochs} epochs; NMI by time: {points}",
              flush=True)
        for note in notes:
            print(f"    {note}")
    print("\n| arm | budget | seeds | NMI | ACC | ARI | wall s | epochs |\n|---|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        arm, budget = name.rsplit(" ", 1)
        cells = " | ".join("{:.3f} ± {:.3f}".format(*mean_spread(rows, m)) for m in ("nmi", "acc", "ari"))
        epochs = np.mean([r["epochs"] for r in rows])
        print(f"| {arm} | {budget} | {len(rows)} | {cells} | {np.mean([r['wall'] for r in rows]):.0f} | {epochs:.0f} |")
    print(f"\ncores: {os.cpu_count()}; work folder: {workdir}")


if __name__ == "__main__":
    main()
