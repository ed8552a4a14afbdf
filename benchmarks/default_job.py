"""The README's main command (``contraclust fit``: MNIST-5k, auto recipe, 10-minute CPU budget) over seeds,
beside k-means on raw pixels.

    python benchmarks/default_job.py                          # seeds 0, 1, 2 (not the default seed 42)
    python benchmarks/default_job.py --cpus 0                 # slowed down: pinned to one core (taskset)
    python benchmarks/default_job.py --env ONEDNN_MAX_CPU_ISA=AVX2 --env ATEN_CPU_CAPABILITY=avx2
                                                               # as on an AVX2-only CPU (no native bf16)
    python benchmarks/default_job.py --seeds 0 --budget 20s   # a quick smoke run
    python benchmarks/default_job.py --then self-label         # each seed without, then with the stage
                                                               # (the plain arm: --set self_label.enabled=false)

Each seed is one ``contraclust fit`` process, exactly the README's command with ``--seed``; its wall
time is the whole process, from start to exit (imports, data, training, the final files). Prints
per-seed NMI/ACC/ARI and time, their mean and spread (sample std), the planned epochs of each stage,
and peak memory.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from contraclust.data import read_mnist5k
from common import format_row, kmeans_on_raw, mean_spread, table_header


def run_fit(fit_args: list[str], out: Path, cpus: str | None, env: dict[str, str]) -> dict:
    cmd = [sys.executable, "-m", "contraclust", "fit", *fit_args, "--out", str(out), "--no-progress"]
    if cpus is not None:
        cmd = ["taskset", "-c", cpus] + cmd
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["process_seconds"] = wall
    metrics["plans"] = [line for line in done.stderr.splitlines() if line.startswith("time budget")]
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", default=None, help="default: the recipe's (10 min on a CPU)")
    parser.add_argument("--method", default=None, help="default: the recipe's (c3: a CC stage, then C3)")
    parser.add_argument("--cpus", default=None, help="pin each run to these CPUs with taskset, e.g. 0")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="environment for the runs")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--workdir", type=Path, default=None, help="keep the run folders here")
    parser.add_argument("--then", default=None, choices=["self-label"],
                        help="also run each seed with this stage at the end (same budget), beside the plain run")
    args = parser.parse_args()

    env = dict(item.split("=", 1) for item in args.env)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="contraclust-default-"))
    variants = {"": []} if args.then is None else {"": [], args.then: []}
    for seed in args.seeds:
        for then, runs in variants.items():
            fit_args = ["--seed", str(seed)] + (["--budget", args.budget] if args.budget else [])
            fit_args += (["--method", args.method] if args.method else []) + (["--then", then] if then else [])
            fit_args += ["--set", "self_label.enabled=false"] if args.then and not then else []  # the plain arm
            fit_args += [a for o in args.overrides for a in ("--set", o)]
            metrics = run_fit(fit_args, workdir / f"seed{seed}{'-' + then if then else ''}", args.cpus, env)
            runs.append(metrics)
            print(f"seed {seed}{' --then ' + then if then else ''}: NMI {metrics['nmi']:.4f}  ACC {metrics['acc']:.4f}  "
                  f"ARI {metrics['ari']:.4f}  process {metrics['process_seconds']:.1f} s  "
                  f"(peak RSS {metrics['peak_host_memory_mb']:.0f} MB)", flush=True)
            for plan in metrics["plans"]:
                print(f"    {plan}")
    kmeans = kmeans_on_raw(read_mnist5k(), args.seeds)
    how = " ".join(filter(None, [f"taskset -c {args.cpus}" if args.cpus else "", " ".join(args.env)]))
    print()
    print(table_header(["wall s / run (whole process)", "slowest run s", "peak host MB"]))
    for then, runs in variants.items():
        wall_mean, wall_sd = mean_spread(runs, "process_seconds")
        slowest = max(r["process_seconds"] for r in runs)
        host = max(r["peak_host_memory_mb"] for r in runs)
        print(format_row(f"contraclust fit{' --then ' + then if then else ''} ({runs[0]['device']}"
                         f"{', ' + how if how else ''}; seeds {', '.join(map(str, args.seeds))})", runs,
                         f" {wall_mean:.0f} ± {wall_sd:.0f} | {slowest:.0f} | {host:.0f} |"))
    print(format_row("k-means on raw pixels (n_init=10)", kmeans,
                     f" {mean_spread(kmeans, 'wall_seconds')[0]:.1f} | - | - |"))
    print(f"\ncores: {os.cpu_count()} (torch threads {__import__('torch').get_num_threads()}); run folders: {workdir}")


if __name__ == "__main__":
    main()
