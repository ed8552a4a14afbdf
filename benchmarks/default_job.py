"""The default job (CC on MNIST-5k, preset mnist5k-cpu) over several seeds, beside k-means on raw pixels.

    python benchmarks/mnist5k_seeds.py                 # 3 seeds, the preset's epochs
    python benchmarks/mnist5k_seeds.py --epochs 2      # a quick smoke run

Each seed is one ``contraclust fit`` process (exactly the README's main command with --seed); prints
per-seed NMI/ACC/ARI, their mean and spread (sample std), wall time per run, and peak memory
(host RSS, and device memory on CUDA).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from contraclust.data import read_mnist5k
from contraclust.report.summary import fit_in_subprocess, format_row, kmeans_on_raw, mean_spread, table_header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    parser.add_argument("--preset", default="mnist5k-cpu")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--workdir", type=Path, default=None, help="keep the run folders here")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="contraclust-mnist5k-"))
    runs = []
    for seed in args.seeds:
        fit_args = ["--preset", args.preset, "--seed", str(seed), "--device", args.device]
        fit_args += ["--epochs", str(args.epochs)] if args.epochs else []
        fit_args += [a for o in args.overrides for a in ("--set", o)]
        metrics = fit_in_subprocess(fit_args, workdir / f"seed{seed}")
        runs.append(metrics)
        print(f"seed {seed}: NMI {metrics['nmi']:.4f}  ACC {metrics['acc']:.4f}  ARI {metrics['ari']:.4f}  "
              f"{metrics['wall_seconds']:.1f} s  ({metrics['epochs']} epochs, peak RSS "
              f"{metrics['peak_host_memory_mb']:.0f} MB)", flush=True)
    kmeans = kmeans_on_raw(read_mnist5k(), args.seeds)
    wall_mean, wall_sd = mean_spread(runs, "wall_seconds")
    host = max(r["peak_host_memory_mb"] for r in runs)
    device = [r["peak_device_memory_mb"] for r in runs if r.get("peak_device_memory_mb")]
    print()
    print(table_header(["wall s / run", "peak host MB", "peak device MB"]))
    print(format_row(f"CC ({args.preset}, {len(runs)} seeds)", runs,
                     f" {wall_mean:.0f} ± {wall_sd:.0f} | {host:.0f} | {max(device) if device else '-'} |"))
    print(format_row("k-means on raw pixels (n_init=10)", kmeans,
                     f" {mean_spread(kmeans, 'wall_seconds')[0]:.1f} | - | - |"))
    print(f"\ndevice: {runs[0]['device']}; run folders: {workdir}")


if __name__ == "__main__":
    main()
