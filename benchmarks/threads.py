"""Step speed and wall time of the default job's CC step on MNIST-5k, alone and beside busy processes, with
torch's default threads, with one thread, and with the threads contraclust chooses from measured speed.

    python benchmarks/threads.py                       # 0, 1 and 2 busy processes; 300 steps each
    python benchmarks/threads.py --busy 0 1 --steps 40 # shorter

Each measurement is a fresh process training the auto recipe's CC stage on MNIST-5k for ``--steps`` steps
(no evaluations), in turn: the "default" setting keeps torch's own thread count (all cores), "1 thread"
pins one, "chosen" lets ``contraclust.threads`` probe and choose as ``fit`` does. A busy process is a pure
Python loop that keeps one core busy. Printed: steps/s over the whole loop (probing included for
"chosen"), the loop's wall time, and the count the tuner kept.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SETTINGS = ("default", "1 thread", "chosen")


def worker(setting: str, steps: int) -> dict:
    import torch

    from contraclust.data import read_mnist5k
    from contraclust.presets import build_config
    from contraclust.threads import ask_for_threads, available_cores
    from contraclust.training import Trainer

    ask_for_threads(available_cores() if setting == "default" else 1 if setting == "1 thread" else None)
    data = read_mnist5k()
    config = build_config("cc", None, device="cpu", seed=0, epochs=1,
                          overrides=["train.progress=false", "train.eval_every=0"])
    config.train.epochs = -(-steps // (len(data) // config.train.batch_size))
    trainer = Trainer(config, data, None, "cpu")
    trainer.schedule.total_steps = steps
    began = time.perf_counter()
    trainer.fit()
    wall = time.perf_counter() - began
    tuner = trainer.threads
    return {"steps_per_second": steps / trainer.train_seconds, "loop_seconds": trainer.train_seconds,
            "fit_seconds": wall, "threads": tuner.current if tuner else torch.get_num_threads(),
            "probes": tuner.probes if tuner else 0}


def measure(setting: str, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    done = subprocess.run([sys.executable, __file__, "--worker", setting, "--steps", str(steps)], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1, 2], help="busy processes beside the run")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--worker", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps)))
        return
    import torch

    from contraclust.threads import available_cores

    print(f"CPU: {available_cores()} cores, {torch.backends.cpu.get_cpu_capability()}; the default job's CC step "
          f"on MNIST-5k, {args.steps} steps a measurement")
    print("\n| busy processes | threads setting | threads kept | steps/s | loop wall s | vs default |\n"
          "|---|---|---|---|---|---|")
    for busy in args.busy:
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        try:
            base = None
            for setting in SETTINGS:
                result = measure(setting, args.steps)
                base = base or result["steps_per_second"]
                print(f"| {busy} | {setting} | {result['threads']} | {result['steps_per_second']:.2f} | "
                      f"{result['loop_seconds']:.1f} | {result['steps_per_second'] / base:.2f}x |", flush=True)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()


if __name__ == "__main__":
    main()
