"""Wall time of whole ``contraclust fit`` processes against their time budget, alone and beside busy
processes: the promise is the budget plus 2%, from the process's start to its exit.

    python benchmarks/budget_under_load.py                          # the README's main command, 0 and 1 busy
    python benchmarks/budget_under_load.py --busy 1 2 --fit --budget 60s
    python benchmarks/budget_under_load.py --busy 0 --fit --data digits --budget 10s   # smoke

Everything after ``--fit`` is passed to ``contraclust fit`` (default: nothing, i.e. the README's main
command: MNIST-5k, the auto recipe, 10 minutes on a CPU). Each run is a fresh process that chooses its own
threads; a busy process is a pure Python loop that keeps one core busy. Printed per run: the budget, the
wall time, how far over (negative: under) it ended, NMI/ACC/ARI, and the threads the run kept.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def fit_beside(busy: int, fit_args: list[str], out: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        began = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "contraclust", "fit", *fit_args, "--out", str(out),
                               "--no-progress"], capture_output=True, text=True, env=env)
        wall = time.monotonic() - began
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    metrics = json.loads((out / "metrics.json").read_text())
    kept = re.findall(r"^threads: (\d+) for", done.stderr, flags=re.M)
    budget = metrics.get("budget_plan", {}).get("budget_seconds")
    return {"wall": wall, "budget": budget, "metrics": metrics, "threads": kept[-1] if kept else "not chosen",
            "cut": "report: skipped" in done.stderr}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="busy processes beside each run")
    parser.add_argument("--fit", nargs=argparse.REMAINDER, default=[], help="contraclust fit's arguments")
    args = parser.parse_args()
    import torch

    try:
        from contraclust.threads import available_cores
    except ImportError:  # an earlier contraclust (PYTHONPATH) measured for comparison
        available_cores = os.cpu_count
    shown = " ".join(args.fit) or "(the README's main command)"
    print(f"CPU: {available_cores()} cores, {torch.backends.cpu.get_cpu_capability()}; contraclust fit {shown}")
    print("\n| busy processes | budget s | wall s | over budget | NMI | ACC | ARI | threads kept |\n"
          "|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for i, busy in enumerate(args.busy):
            result = fit_beside(busy, args.fit, Path(work) / f"run{i}")
            m, budget = result["metrics"], result["budget"]
            over = f"{100 * (result['wall'] / budget - 1):+.1f}%" if budget else "no budget"
            print(f"| {busy} | {budget or 0:.0f} | {result['wall']:.1f} | {over} | {m.get('nmi', float('nan')):.4f} | "
                  f"{m.get('acc', float('nan')):.4f} | {m.get('ari', float('nan')):.4f} | {result['threads']} |",
                  flush=True)


if __name__ == "__main__":
    main()
