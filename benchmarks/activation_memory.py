"""Device memory of a training step per preset: activations saved for backward per image, the model
state, and the largest per-GPU batch that fits a GPU of a given size.

    python3 benchmarks/activation_memory.py                       # every image preset, 80 GB GPU
    python3 benchmarks/activation_memory.py --preset clc-imagenet1k-64 --gpu-gb 80 --data-gb 15.7

Counts what autograd keeps from the forward of two views of a few random images (each storage once,
weights excluded: ``contraclust.training.memory``), on this machine's CPU under the preset's precision
as it would run on CUDA (bf16 autocast, or fp32 for the paper presets that ask for it). The batch that
fits leaves room for the resident data (``--data-gb``), the weights with their gradients and Adam's two
moments, a 4 GB reserve, and a margin of 1.5x on the activations for backward's transients.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contraclust.augment import build_augmenter  # noqa: E402
from contraclust.presets import PRESETS, build_config  # noqa: E402
from contraclust.training.device import autocast_context, autocast_dtype  # noqa: E402
from contraclust.training.memory import (  # noqa: E402
    activation_bytes, largest_batch, model_state_bytes,
)
from contraclust.training.trainer import build_method  # noqa: E402

# The packed size of each preset's data set when resident (uint8), for the batch that fits beside it.
RESIDENT_GB = {"clc-imagenet1k-64": 1.28e6 * 3 * 64 * 64 / 2 ** 30, "cifar10-fast": 60000 * 3 * 32 * 32 / 2 ** 30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", default=None, help="repeatable (default: a set of image presets)")
    parser.add_argument("--gpu-gb", type=float, default=80.0, help="the GPU's memory (default: 80 GB, an H100/A100)")
    parser.add_argument("--data-gb", type=float, default=None,
                        help="resident data on the GPU (default: the preset's data set packed as uint8, where known)")
    parser.add_argument("--images", type=int, default=4, help="images in the probe batch")
    args = parser.parse_args()
    presets = args.preset or ["cc-paper-cifar10", "c3-paper-cifar10", "cifar10-fast", "drc-paper-cifar10",
                              "clc-imagenet1k", "clc-imagenet1k-64"]
    print(f"| preset | backbone | px | precision | MB / image (2 views) | model state MB | batch | step GB at that "
          f"batch | largest batch on {args.gpu_gb:g} GB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in presets:
        if name not in PRESETS:
            parser.error(f"unknown preset {name}")
        config = build_config(None, name, epochs=1)
        size = config.augment.size
        method = build_method(config, (3, size, size)).to(memory_format=torch.channels_last)
        dtype = autocast_dtype(config.train.precision, torch.device("cuda"))  # as it would run on a GPU
        images = torch.randint(0, 256, (args.images, 3, size, size), dtype=torch.uint8)
        augment = build_augmenter(config.augment, True)
        views = [augment(images).contiguous(memory_format=torch.channels_last) for _ in range(2)]
        per_image, fixed = activation_bytes(method, *views, lambda: autocast_context(dtype, torch.device("cpu")))
        state = model_state_bytes(method)
        data_gb = args.data_gb if args.data_gb is not None else RESIDENT_GB.get(name, 0.0)
        fits = largest_batch(per_image, state + 1.5 * fixed, args.gpu_gb * 2 ** 30, data_gb * 2 ** 30)
        batch = config.train.batch_size
        step_gb = (1.5 * (per_image * batch + fixed) + state) / 2 ** 30
        print(f"| {name} | {config.model.backbone} ({config.model.stem}) | {size} | "
              f"{'bf16' if dtype is torch.bfloat16 else 'fp32'} | {per_image / 2 ** 20:.1f} | {state / 2 ** 20:.0f} | "
              f"{batch} | {step_gb:.1f} | {fits} (beside {data_gb:.1f} GB of data) |", flush=True)


if __name__ == "__main__":
    main()
