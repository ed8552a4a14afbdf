"""Training throughput of a preset on this device, beside the official-style input pipeline.

    python benchmarks/throughput.py --preset cc-paper-cifar10          # GPU: the paper's setting
    python benchmarks/throughput.py --preset cifar10-fast
    python benchmarks/throughput.py --preset cifar10-fast --synthetic 2048 --batch-size 32 --steps 3  # CPU toy
    python benchmarks/throughput.py --preset cifar10-fast --data cifar10-32.ccpack   # a pack (contraclust pack)

Both paths run the same model, optimiser and loss on the same batch size: the fast path indexes the
device-resident uint8 data and makes both views with the batched on-device augmentation; the
streaming path is the same run with the data left in host memory (for a ``.ccpack``, its memory map)
and each batch gathered by a background thread into pinned memory and copied asynchronously; the
reference path feeds views made per image by PIL/torchvision transforms in DataLoader workers (the
official code's way) and copies each batch to the device. Prints images/s (two views count as one
image), after warm-up, peak device memory, their ratio, and an MFU estimate on CUDA.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_pipeline import reference_loader  # noqa: E402

from contraclust.data import ImageSet, load_data  # noqa: E402
from contraclust.presets import build_config  # noqa: E402
from contraclust.training.device import peak_device_memory_mb  # noqa: E402
from contraclust.training import Trainer, resolve_device  # noqa: E402

DEFAULT_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10"
H100_BF16_DENSE_TFLOPS = 989.4


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training_path(trainer: Trainer, steps: int, warmup: int) -> float:
    """Images/s of the trainer's own epoch loop (resident or streamed, as ``trainer.source`` is)."""
    done = 0
    while True:
        for batch in trainer.epoch_batches():
            if done == warmup:
                sync(trainer.device)
                start = time.perf_counter()
            trainer.train_step(batch.samples, done, batch.partner)
            done += 1
            if done == warmup + steps:
                sync(trainer.device)
                return steps * trainer.local_batch / (time.perf_counter() - start)


def time_reference_path(trainer: Trainer, images: torch.Tensor, steps: int, warmup: int, workers: int) -> float:
    loader = reference_loader(images, trainer.config.augment, trainer.local_batch, workers,
                              pin=trainer.device.type == "cuda")
    iterator = iter(loader)
    for i in range(warmup + steps):
        if i == warmup:
            sync(trainer.device)
            start = time.perf_counter()
        try:
            view_a, view_b = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            view_a, view_b = next(iterator)
        view_a = view_a.to(trainer.device, non_blocking=True)
        view_b = view_b.to(trainer.device, non_blocking=True)
        if trainer.use_channels_last:
            view_a = view_a.contiguous(memory_format=torch.channels_last)
            view_b = view_b.contiguous(memory_format=torch.channels_last)
        trainer.step_on_views(view_a, view_b, i)
    sync(trainer.device)
    return steps * trainer.local_batch / (time.perf_counter() - start)


def time_streaming_path(config, data, device: torch.device, steps: int, warmup: int) -> float:
    """The same run with the samples left in host memory (a memory map for a .ccpack) and streamed."""
    config = copy.deepcopy(config)
    config.train.data_placement = "streaming"
    trainer = Trainer(config, data, None, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    speed = time_training_path(trainer, steps, warmup)
    memory = peak_device_memory_mb(device)
    print(f"streaming path (host memory -> background gather -> pinned -> async copy -> on-device views): "
          f"{speed:,.0f} images/s" + (f", peak device memory {memory:,.0f} MB" if memory else ""))
    return speed


def training_flops_per_image(trainer: Trainer) -> float:
    """3x the forward FLOPs of both views of one image (forward + backward), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    views = trainer.make_views(trainer.samples[:2])
    counter = FlopCounterMode(display=False)
    with counter, trainer.autocast(), torch.no_grad():
        trainer.method(*views)
    return 3.0 * counter.get_total_flops() / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cc-paper-cifar10")
    parser.add_argument("--data", default=str(DEFAULT_CIFAR), help="images to train on (default: shared CIFAR-10)")
    parser.add_argument("--synthetic", type=int, default=0, help="use N random 32x32 RGB images instead of --data")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="reference DataLoader workers")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--no-streaming", action="store_true", help="skip the streaming path")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE_TFLOPS,
                        help="device peak for the MFU estimate (default: H100 SXM dense bf16)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    device = resolve_device(args.device)
    if args.synthetic:
        g = torch.Generator().manual_seed(0)
        data = ImageSet(torch.randint(0, 256, (args.synthetic, 3, 32, 32), generator=g, dtype=torch.uint8), None, "synthetic")
    else:
        data = load_data(args.data, progress=False)
    config = build_config(None, args.preset, epochs=1, batch_size=args.batch_size, seed=0,
                          overrides=args.overrides + ["train.progress=false"])
    trainer = Trainer(config, data, None, device)
    print(f"preset {config.preset}: {config.model.backbone} ({config.model.stem} stem) at {config.augment.size} px, "
          f"batch {trainer.local_batch}, device {device}, precision "
          f"{trainer.autocast_dtype or torch.float32}, channels_last {trainer.use_channels_last}, "
          f"compile {config.train.compile and device.type == 'cuda'}, data {data.name} ({len(data)} images)")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    fast = time_training_path(trainer, args.steps, args.warmup)
    fast_memory = peak_device_memory_mb(device)
    print(f"fast path (resident uint8 + batched on-device views): {fast:,.0f} images/s"
          + (f", peak device memory {fast_memory:,.0f} MB" if fast_memory else ""))
    if not args.no_reference:  # the headline: the ratio comes before anything optional
        reference = time_reference_path(trainer, data.images, args.steps, args.warmup, args.workers)
        print(f"reference path (per-image PIL transforms, {args.workers} DataLoader workers): {reference:,.0f} images/s")
        print(f"ratio fast / reference: {fast / reference:.2f}x")
    if not args.no_streaming:
        streaming = time_streaming_path(config, data, device, args.steps, args.warmup)
        print(f"ratio streaming / resident: {streaming / fast:.2f}x")
    flops = training_flops_per_image(trainer)
    achieved = fast * flops / 1e12
    line = f"training FLOPs per image (2 views, fwd+bwd): {flops / 1e9:.2f} GFLOP -> {achieved:.2f} TFLOP/s"
    if device.type == "cuda":
        line += f", MFU {100 * achieved / args.peak_tflops:.1f}% of {args.peak_tflops:g} TFLOP/s"
    print(line)


if __name__ == "__main__":
    main()
