"""Steps/s of the default job's training step on this CPU: before (fp32, NCHW) and after each speed-up.

    python benchmarks/cpu_step.py                      # the MNIST-5k default step, every variant
    python benchmarks/cpu_step.py --compile            # also torch.compile (CPU inductor; ~40 s to compile)
    python benchmarks/cpu_step.py --profile            # and the op profile (torch.profiler) of what auto runs
    python benchmarks/cpu_step.py --steps 3 --warmup 1 --width 8    # smoke run

Each variant times the same real training step (views, forward, loss, backward, Adam) of the auto recipe's
CC stage on MNIST-5k, after warm-up, in this process. "before" is the earlier default's step (fp32, NCHW,
one cluster head); "auto" is what ``fit`` runs on this machine (``precision=auto``, channels_last, the
recipe's 5 cluster heads). Threads: all of torch's, then one.
"""
from __future__ import annotations

import argparse
import time

import torch

from contraclust.data import read_mnist5k
from contraclust.presets import build_config
from contraclust.training import Trainer
from contraclust.training.device import autocast_dtype, cpu_has_fast_bf16, describe_precision


def time_steps(overrides: list[str], args, compile_model: bool = False) -> float:
    config = build_config("cc", None, device="cpu", epochs=1, seed=0,
                          overrides=overrides + [f"model.width={args.width}", "train.progress=false"])
    data = read_mnist5k()
    trainer = Trainer(config, data, None, "cpu")
    if compile_model:
        trainer.forward = torch.compile(trainer.model)
    generator = torch.Generator().manual_seed(0)
    batch = config.train.batch_size

    def run(n: int) -> None:
        for step in range(n):
            rows = torch.randint(0, len(data), (batch,), generator=generator)
            out = trainer.train_step(trainer.samples[rows], step)
        float(out["loss"])

    run(args.warmup)
    start = time.perf_counter()
    run(args.steps)
    return args.steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--width", type=int, default=32, help="small CNN width (the recipe's is 32)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile with the CPU inductor")
    parser.add_argument("--profile", action="store_true", help="print the op profile of the auto variant")
    args = parser.parse_args()

    threads = torch.get_num_threads()
    auto_dtype = autocast_dtype("auto", torch.device("cpu"))
    print(f"CPU: {torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_has_fast_bf16()}, {threads} threads; "
          f"auto precision here: {describe_precision(auto_dtype)}; batch of the auto recipe on MNIST-5k")
    one = ["method.cluster_heads=1"]
    variants = [
        ("before: fp32, NCHW, 1 cluster head", one + ["train.precision=fp32", "train.channels_last=false"], False),
        ("fp32, channels_last", one + ["train.precision=fp32", "train.channels_last=true"], False),
        ("bf16 autocast, NCHW", one + ["train.precision=bf16", "train.channels_last=false"], False),
        ("bf16 autocast, channels_last", one + ["train.precision=bf16", "train.channels_last=true"], False),
        ("auto (what fit runs: 5 stacked cluster heads)", ["train.precision=auto", "train.channels_last=true"], False),
    ]
    if args.compile:
        variants.append(("auto + torch.compile (inductor)", ["train.precision=auto"], True))
    batch = build_config("cc", None, device="cpu").train.batch_size
    print("\n| variant | threads | steps/s | images/s | vs before |\n|---|---|---|---|---|")
    base = None
    for name, overrides, compiled in variants:
        rate = time_steps(overrides, args, compiled)
        base = base or rate
        print(f"| {name} | {threads} | {rate:.2f} | {rate * batch:.0f} | {rate / base:.2f}x |", flush=True)
    torch.set_num_threads(1)
    rate = time_steps(["train.precision=auto"], args)
    print(f"| auto (what fit runs: 5 stacked cluster heads) | 1 | {rate:.2f} | {rate * batch:.0f} | {rate / base:.2f}x |")
    torch.set_num_threads(threads)
    if args.profile:
        profile(args)


def profile(args) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    config = build_config("cc", None, device="cpu", epochs=1, seed=0,
                          overrides=[f"model.width={args.width}", "train.progress=false"])
    data = read_mnist5k()
    trainer = Trainer(config, data, None, "cpu")
    generator = torch.Generator().manual_seed(0)
    batch = config.train.batch_size
    for step in range(args.warmup):
        trainer.train_step(trainer.samples[torch.randint(0, len(data), (batch,), generator=generator)], step)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for step in range(args.steps):
            trainer.train_step(trainer.samples[torch.randint(0, len(data), (batch,), generator=generator)], step)
    print(f"\nop profile of the auto variant, {args.steps} steps (self CPU time):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=40))


if __name__ == "__main__":
    main()
