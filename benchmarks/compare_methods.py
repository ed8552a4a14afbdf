"""CC, C3, DRC and CLC on one shared budget (same epochs, backbone, views), over seeds, beside k-means.

    python benchmarks/compare_methods.py                       # MNIST-5k, CPU preset, 3 seeds
    python benchmarks/compare_methods.py --epochs 4 --seeds 0  # smoke run
    python benchmarks/compare_methods.py --data ../shared/datasets/cifar10 --preset cc-paper-cifar10 --epochs 20

C3 is a fine-tuning stage after CC: within the same total budget E it gets a CC stage of
E - c3_epochs epochs and then c3_epochs of C3; the row "CC stage of C3" is that CC run, so that
C3's gain over its own initialisation can be read off. Each run is a ``contraclust fit`` process;
the table gives mean ± sample std of NMI/ACC/ARI, wall seconds per run, peak host RSS and (on CUDA)
peak device memory, and the ratio largest/smallest cluster.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from contraclust.data import load_data
from common import fit_in_subprocess, format_row, kmeans_on_raw, mean_spread, table_header

METHODS = ("cc", "c3", "drc", "clc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--preset", default="mnist5k-cpu", help="the shared preset (backbone, views, optimiser)")
    parser.add_argument("--epochs", type=int, default=30, help="the shared budget per method")
    parser.add_argument("--c3-epochs", type=int, default=10, help="of the budget, epochs of C3 after CC")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--workdir", type=Path, default=None, help="keep the run folders here")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="contraclust-compare-"))
    runs: dict[str, list[dict]] = {}
    for seed in args.seeds:
        for method in args.methods:
            common = ["--data", args.data, "--preset", args.preset, "--method", method, "--seed", str(seed),
                      "--device", args.device, "--set", "train.eval_every=0"]
            common += [a for o in args.overrides for a in ("--set", o)]
            out = workdir / f"{method}-seed{seed}"
            if method == "c3":
                common += ["--epochs", str(args.c3_epochs), "--set",
                           f"method.cc_stage_epochs={args.epochs - args.c3_epochs}"]
            else:
                common += ["--epochs", str(args.epochs)]
            metrics = fit_in_subprocess(common, out)
            runs.setdefault(method, []).append(metrics)
            line = f"seed {seed} {method:4s}: NMI {metrics['nmi']:.4f} ACC {metrics['acc']:.4f} ARI {metrics['ari']:.4f}"
            if method == "c3":
                stage = json.loads((out / "cc-stage" / "metrics.json").read_text())
                runs.setdefault("cc-stage", []).append(stage)  # its wall_seconds: the run's time when the stage ended
                line += f"  (its CC stage: NMI {stage['nmi']:.4f} ACC {stage['acc']:.4f} ARI {stage['ari']:.4f})"
            print(line + f"  {metrics['wall_seconds']:.0f} s", flush=True)

    data = load_data(None if args.data == "mnist5k" else args.data, progress=False)
    kmeans = kmeans_on_raw(data, args.seeds)
    names = {"cc": "CC", "c3": "C3 (CC stage + C3)", "cc-stage": "&nbsp;&nbsp;CC stage of C3", "drc": "DRC", "clc": "CLC"}
    print(f"\n{args.data}, preset {args.preset}, {args.epochs} epochs per method, seeds {args.seeds}\n")
    print(table_header(["wall s / run", "peak host MB", "peak device MB", "largest/smallest cluster"]))
    for key in [m for m in ("cc", "c3", "cc-stage", "drc", "clc") if m in runs]:
        wall = mean_spread(runs[key], "wall_seconds")
        host = max(r["peak_host_memory_mb"] for r in runs[key])
        device = [r["peak_device_memory_mb"] for r in runs[key] if r.get("peak_device_memory_mb")]
        balance = np.mean([max(r["cluster_sizes"]) / max(1, min(r["cluster_sizes"])) for r in runs[key]])
        extra = f" {wall[0]:.0f} ± {wall[1]:.0f} | {host:.0f} | {max(device) if device else '-'} | {balance:.2f} |"
        print(format_row(names[key], runs[key], extra))
    km_wall = mean_spread(kmeans, "wall_seconds")[0]
    print(format_row("k-means on raw pixels", kmeans, f" {km_wall:.1f} | - | - | - |"))
    print(f"\nrun folders: {workdir}")


if __name__ == "__main__":
    main()
