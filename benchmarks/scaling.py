"""How the cost grows with the data: time of each step and peak memory against N, for vectors and packed
images, CC and CLC, K from 10 to 1000; a table, a log-log plot and the fitted exponent of each step.

    python benchmarks/scaling.py --plot docs/scaling.png          # the table of docs/speed.md (about 25 min on 2 cores)
    python benchmarks/scaling.py --vectors 3000 6000 --images 300 600 --streamed 300 600 --k-sweep 10 \\
        --sweep-n 3000 --whole 2000 4000 --plot /tmp/scaling.png   # smoke

Every measurement runs in a fresh process (``--child``) so that its peak memory is its own. Steps, each
timed on its own: ``read`` (load_data), ``pack`` (images: ``pack_folder`` of a CIFAR-10 folder, repeated
past 60,000 through links), ``neighbours`` (the vectors' nearest-neighbour search, exact up to
``EXACT_LIMIT`` rows then the inverted file), ``setup`` (the rest of building the trainer: model, data
placement, the step-memory probe), ``epoch`` (one training epoch), ``read-out`` (the pass that assigns
every sample, CLC's Sinkhorn over the whole set included) and ``evaluation`` (NMI/ACC/ARI). Memory: the
peak anonymous resident memory (sampled every 10 ms: the process's own, without the file pages of a
memory-mapped pack that the kernel can drop at will) and the kernel's peak resident set (``VmHWM``,
file pages included). ``--streamed`` trains the same packs with ``train.data_placement=streaming`` to show
that memory then stays flat. ``--whole`` times ``contraclust fit`` end to end (one CC epoch, report included) at
two sizes: the issue's "one epoch on 200k vectors costs at most about 10x one on 20k".
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

STEPS = ("read", "pack", "neighbours", "setup", "epoch", "read-out", "evaluation")


class MemorySampler(threading.Thread):
    """Peak anonymous resident memory (``RssAnon``) of this process, sampled every ``interval`` s."""

    def __init__(self, interval: float = 0.01):
        super().__init__(daemon=True)
        self.interval, self.peak, self.running = interval, 0, True

    @staticmethod
    def status(field: str) -> int:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.status("RssAnon"))
            time.sleep(self.interval)

    def stop(self) -> dict[str, float]:
        self.running = False
        self.join()
        self.peak = max(self.peak, self.status("RssAnon"))
        return {"anon_mb": self.peak / 2**20, "hwm_mb": self.status("VmHWM") / 2**20}


def child(spec: dict) -> dict:
    """One measurement: read the data, build the trainer, train one epoch, read out, evaluate."""
    import torch

    import contraclust.training.trainer as trainer_module
    from contraclust.data import load_data
    from contraclust.metrics import evaluate_clustering
    from contraclust.presets import build_config
    from contraclust.recipes.auto import DataProfile

    evaluate_clustering(np.arange(4) % 2, np.arange(4) % 2)  # its imports (scikit-learn) are not a step
    sampler = MemorySampler()
    sampler.start()
    seconds, facts = {}, {}
    began = time.perf_counter()
    data = load_data(spec["data"], progress=False)
    seconds["read"] = time.perf_counter() - began
    config = build_config(spec["method"], None, profile=DataProfile.of(data), device=spec["device"],
                          n_clusters=spec["k"], epochs=1, seed=0,
                          overrides=["train.progress=false", "train.eval_every=0", *spec["overrides"]])
    search = trainer_module.search_neighbours_once

    def timed_search(*args, **kwargs):
        started = time.perf_counter()
        found = search(*args, **kwargs)
        seconds["neighbours"] = time.perf_counter() - started
        facts["recall"] = found.recall
        if data.labels is not None:  # how often a neighbour shares the sample's mixture component
            labels = torch.as_tensor(data.labels, device=found.indices.device)
            facts["agreement"] = float((labels[found.indices] == labels[:, None]).float().mean())
        return found

    trainer_module.search_neighbours_once = timed_search
    started = time.perf_counter()
    trainer = trainer_module.Trainer(config, data, None, spec["device"])
    seconds["setup"] = time.perf_counter() - started - seconds.get("neighbours", 0.0)
    started = time.perf_counter()
    result = trainer.fit()
    fitted = time.perf_counter() - started
    seconds["epoch"], seconds["read-out"] = trainer.train_seconds, fitted - trainer.train_seconds
    started = time.perf_counter()
    scores = evaluate_clustering(data.labels, result.labels)
    seconds["evaluation"] = time.perf_counter() - started
    memory = sampler.stop()
    if torch.cuda.is_available() and spec["device"].startswith("cuda"):
        memory["device_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return {**spec, "n": len(data), "seconds": seconds, "memory": memory, "nmi": scores["nmi"],
            "batch": config.train.batch_size, "placement": trainer.source.placement, **facts}


def run_child(spec: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"measurement {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def mixture(n: int, dim: int, k: int, path: Path) -> Path:
    """``n`` rows of a ``k``-component Gaussian mixture in ``dim`` dimensions (centres 3 sd apart)."""
    if not path.exists():
        rng = np.random.default_rng(0)
        centres = rng.normal(size=(k, dim)).astype(np.float32) * 3
        labels = rng.integers(0, k, n)
        np.savez(path, x=centres[labels] + rng.normal(size=(n, dim)).astype(np.float32), y=labels)
    return path


def image_pack(cifar: Path, n: int, folder: Path) -> tuple[Path, float]:
    """A raw 32 px ``.ccpack`` of ``n`` CIFAR-10 images (the same share of every class; past the 60,000
    images each file is copied again under a new name, since the folder reader keeps one of several links to
    the same file) and the seconds ``pack_folder`` took."""
    from contraclust.data.pack import pack_folder

    classes = sorted(p for p in (cifar / "train").iterdir() if p.is_dir())
    files = {c.name: sorted(f for split in ("train", "test") for f in (cifar / split / c.name).iterdir())
             for c in classes}
    links = folder / f"cifar-{n}"
    for name, paths in files.items():
        (links / name).mkdir(parents=True, exist_ok=True)
        for i in range(n // len(files)):
            source = paths[i % len(paths)]  # train/ and test/ reuse file names: the split goes into the link's
            target = links / name / f"{i // len(paths)}-{source.parent.parent.name}-{source.name}"
            if target.exists():
                continue
            if i < len(paths):
                target.symlink_to(source.resolve())
            else:
                shutil.copyfile(source, target)
    shutil.rmtree(folder / f"cifar-{n}.ccpack", ignore_errors=True)  # packed afresh: a finished pack is reused
    began = time.perf_counter()
    pack = pack_folder(links, folder / f"cifar-{n}.ccpack", 32, 3, progress=False)
    return pack, time.perf_counter() - began


def whole_fit(data: Path, folder: Path) -> float:
    """Seconds of ``contraclust fit`` (one CC epoch, the report included) as one process."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "contraclust", "fit", "--data", str(data), "-k", "10", "--method",
                           "cc", "--epochs", "1", "--device", "cpu", "--no-progress", "--out", str(folder)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return time.perf_counter() - began


def exponent(rows: list[dict], step: str) -> float | None:
    """The slope of log(seconds) against log(N) over the rows where the step took time."""
    points = [(r["n"], r["seconds"][step]) for r in rows if r["seconds"].get(step, 0) > 0.02]
    if len(points) < 2 or len({n for n, _ in points}) < 2:
        return None
    return float(np.polyfit(np.log([n for n, _ in points]), np.log([s for _, s in points]), 1)[0])


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}\n")
    print("| data | method | K | N | " + " | ".join(f"{s} s" for s in STEPS)
          + " | peak anon MB | VmHWM MB | NMI | neighbours: recall, same component |")
    print("|" + "---|" * (len(STEPS) + 8))
    for r in rows:
        cells = " | ".join(f"{r['seconds'][s]:.2f}" if s in r["seconds"] else "" for s in STEPS)
        found = f"{r['recall']:.3f}, {r['agreement']:.3f}" if "agreement" in r else ""
        print(f"| {r['kind']} | {r['method']} | {r['k']} | {r['n']:,} | {cells} | {r['memory']['anon_mb']:.0f} "
              f"| {r['memory']['hwm_mb']:.0f} | {r['nmi']:.3f} | {found} |")


def print_exponents(groups: dict[str, list[dict]]) -> None:
    print("\nfitted exponent of each step's seconds against N (1 = linear):\n")
    print("| series | " + " | ".join(STEPS) + " | peak anon memory |")
    print("|" + "---|" * (len(STEPS) + 2))
    for name, rows in groups.items():
        memory = [(r["n"], r["memory"]["anon_mb"]) for r in rows]
        slope = np.polyfit(np.log([n for n, _ in memory]), np.log([m for _, m in memory]), 1)[0] if len(memory) > 1 else None
        cells = [exponent(rows, s) for s in STEPS] + [slope]
        print(f"| {name} | " + " | ".join("" if c is None else f"{c:.2f}" for c in cells) + " |")


def plot(groups: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not groups:  # only the K sweep ran: no series against N to draw
        print("\nplot: nothing measured against N")
        return
    shown = [s for s in STEPS if any(s in r["seconds"] for rows in groups.values() for r in rows)]
    fig, axes = plt.subplots(1, len(groups) + 1, figsize=(5 * (len(groups) + 1), 4), squeeze=False)
    axes = axes[0]
    for ax, (name, rows) in zip(axes, groups.items()):
        for step in shown:
            points = [(r["n"], r["seconds"][step]) for r in rows if r["seconds"].get(step, 0) > 0]
            if points:
                ax.loglog(*zip(*points), marker="o", label=step)
        ax.set(title=name, xlabel="N", ylabel="seconds")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    for name, rows in groups.items():
        axes[-1].loglog([r["n"] for r in rows], [r["memory"]["anon_mb"] for r in rows], marker="o", label=name)
    axes[-1].set(title="peak anonymous memory", xlabel="N", ylabel="MB")
    axes[-1].legend(fontsize=8)
    axes[-1].grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nplot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--vectors", type=int, nargs="*", default=[10_000, 30_000, 100_000, 300_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--methods", nargs="+", default=["cc", "clc"])
    parser.add_argument("--k-sweep", type=int, nargs="*", default=[10, 100, 1000], help="K at --sweep-n vectors")
    parser.add_argument("--sweep-n", type=int, default=200_000)
    parser.add_argument("--images", type=int, nargs="*", default=[6_000, 20_000, 60_000, 120_000])
    parser.add_argument("--cifar", type=Path, default=Path("../shared/datasets/cifar10"))
    parser.add_argument("--streamed", type=int, nargs="*", default=[6_000, 20_000, 60_000, 120_000],
                        help="the same packs again, streamed to the device in batches (train.data_placement=streaming)")
    parser.add_argument("--whole", type=int, nargs="*", default=[20_000, 200_000], help="whole-process fit at these N")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work", type=Path, help="where the data files go (default: a temporary folder)")
    parser.add_argument("--plot", type=Path, default=Path("scaling.png"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="contraclust-scaling-"))
    work.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[dict]] = {}

    def measure(series: str, data: Path, method: str, k: int, kind: str, overrides=(), extra=None) -> None:
        try:
            row = run_child({"data": str(data), "method": method, "k": k, "device": args.device,
                             "overrides": list(overrides), "kind": kind})
        except RuntimeError as failure:  # one failed size is a finding, not the end of the benchmark
            print(f"{series}: {data.name} FAILED: {str(failure).strip().splitlines()[-1]}", flush=True)
            return
        row["seconds"].update(extra or {})
        groups.setdefault(series, []).append(row)
        print(f"{series}: N {row['n']:,}: " + ", ".join(f"{s} {v:.2f} s" for s, v in row["seconds"].items())
              + f"; {row['memory']['anon_mb']:.0f} MB", flush=True)

    for method in args.methods:
        for n in args.vectors:
            measure(f"vectors {method} K=10", mixture(n, args.dim, 10, work / f"mix-{n}-10.npz"), method, 10,
                    f"vectors {args.dim}-D")
    for method in args.methods:
        for k in args.k_sweep:
            measure(f"vectors {method} N={args.sweep_n:,}", mixture(args.sweep_n, args.dim, k, work / f"mix-{args.sweep_n}-{k}.npz"),
                    method, k, f"vectors {args.dim}-D")
    for n in args.images:
        pack, seconds = image_pack(args.cifar, n, work)
        measure("images cc", pack, "cc", 10, "CIFAR-10 pack", (), {"pack": seconds})
    for n in args.streamed:
        pack, _ = image_pack(args.cifar, n, work)
        measure("images cc streamed", pack, "cc", 10, "CIFAR-10 pack, streamed", ["train.data_placement=streaming"])
    print_table(f"one epoch, {args.device}, {os.cpu_count()} cores", [r for rows in groups.values() for r in rows])
    by_n = {name: rows for name, rows in groups.items() if "N=" not in name}
    print_exponents(by_n)
    if len(args.whole) == 2:
        small, large = (whole_fit(mixture(n, args.dim, 10, work / f"mix-{n}-10.npz"), work / f"fit-{n}") for n in args.whole)
        print(f"\nwhole process, contraclust fit -k 10 --method cc --epochs 1: {args.whole[0]:,} vectors {small:.1f} s, "
              f"{args.whole[1]:,} vectors {large:.1f} s: {large / small:.1f}x for {args.whole[1] / args.whole[0]:.0f}x the data")
    plot(by_n, args.plot)


if __name__ == "__main__":
    main()
