"""The suggest-k table of docs/imbalance-and-k.md: each command run as written (in its own process), one row each.

    python benchmarks/suggest_k.py                                   # digits (2 min) and MNIST-5k (10 min)
    python benchmarks/suggest_k.py --only digits                     # the first row alone
    python benchmarks/suggest_k.py --only digits --budget 20s --range 5:15 --k 10   # smoke

Each row: the rank of the true K (10 for both), the top five of the ranking (the first three with their
scores), and the true K's stability and silhouette with the NMI of its head (the labels are read only for
that column; suggest-k never ranks by them).
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

COMMANDS = {"digits": ["--data", "digits", "--range", "2:20", "--budget", "2m"],
            "mnist5k": ["--range", "2:30"]}


def row(name: str, args: list[str], true_k: int, workdir: Path) -> tuple[str, str]:
    out = workdir / name
    command = [sys.executable, "-m", "contraclust", "suggest-k", *args, "--out", str(out), "--no-progress"]
    began = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ})
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    result = json.loads((out / "suggest_k.json").read_text())
    ranking, scores, signals = result["ranking"], result["scores"], result["signals"]
    top = [f"{k} ({scores[str(k)]:.3f})" if i < 3 else str(k) for i, k in enumerate(ranking[:5])]
    truth = signals[str(true_k)]
    nmi = f"; {truth['nmi']:.3f}" if "nmi" in truth else ""
    shown = "contraclust suggest-k " + " ".join(args)
    train = result["train"]
    acc = f", K={true_k}'s head ACC {truth['acc']:.3f}" if "acc" in truth else ""
    note = (f"{name}: {train['epochs']} epochs of instance contrast, {train['c3_epochs']} of cross-instance "
            f"contrast, {train['head_epochs']} of the heads, in {train['wall_seconds']:.0f} s "
            f"(the process: {time.monotonic() - began:.0f} s){acc}")
    return (f"| `{shown}` | **{ranking.index(true_k) + 1}** | {', '.join(top)} | "
            f"{truth['stability']:.3f}, {truth['silhouette']:.3f}{nmi} |"), note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(COMMANDS), default=None, help="one of the rows")
    parser.add_argument("--budget", default=None, help="replace the row's budget (for a quick look)")
    parser.add_argument("--range", dest="k_range", default=None, help="replace the row's range of K")
    parser.add_argument("--k", type=int, default=10, help="the true number of clusters (default 10)")
    args = parser.parse_args()
    names = [args.only] if args.only else list(COMMANDS)
    print("| command | K=10's rank | top of the ranking (score) | K=10: stability, silhouette; NMI of its head |")
    print("|---|---|---|---|")
    notes = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            command = list(COMMANDS[name])
            for flag, value in (("--budget", args.budget), ("--range", args.k_range)):
                if value is not None:
                    if flag in command:
                        command[command.index(flag) + 1] = value
                    else:
                        command += [flag, value]
            line, note = row(name, command, args.k, Path(workdir))
            print(line, flush=True)
            notes.append(note)
    print("\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
