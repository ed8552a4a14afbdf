"""What CLC on ImageNet-1k at 64 px (``clc-imagenet1k-64``) costs on 1, 8 and 64 GPUs under torchrun:
the step's counted FLOPs, the loss's and the collectives' sizes at each global batch, and the projected
time of an epoch and of the preset's schedule (docs/scaling.md quotes this).

    python benchmarks/clc_projection.py                     # the table of docs/scaling.md
    python benchmarks/clc_projection.py --tflops 45 --gpus 1 8 64 256

Counted, on this machine: the FLOPs of one training step of the preset's network (forward and backward
of two views, ``torch.utils.flop_counter`` on a few 64 px images) and the loss's on the global batch.
Assumed (``--tflops``, to be replaced by the GPU campaign's measured images/s): the sustained bf16 rate of
one GPU on this convolutional network; 60 TFLOPS is about two thirds of what MLPerf's ResNet-50 entries
sustain on an H100. Communication: DDP's all-reduce of the gradients (ring: 2 (P-1)/P of their bytes per
GPU) and the all-gather of the heads' outputs, at ``--link-gbs`` within a node and ``--network-gbs``
between nodes of 8 GPUs.
"""
from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from contraclust.presets import build_config
from contraclust.training.trainer import build_method

IMAGES = 1_281_167  # ImageNet-1k's train split


def step_flops_per_image(config, images: int = 2) -> float:
    """Counted FLOPs of forward + backward of two views per image (the loss excluded: counted apart)."""
    size = config.augment.size
    method = build_method(config, (3, size, size))
    views = [torch.rand(images, 3, size, size) for _ in range(2)]
    with FlopCounterMode(display=False) as counter:
        outputs = method(*views)
        sum(v.float().sum() for v in outputs.values()).backward()
    return counter.get_total_flops() / images


def loss_flops(global_batch: int, feature_dim: int, k: int, queue: int, iters: int) -> float:
    """The instance loss's (2B)^2 similarities and the Sinkhorn over (2B + queue) x K, forward and backward
    (3x), computed whole on every GPU (the trainer gathers the outputs, then each rank takes the full loss)."""
    instance = 2 * (2 * global_batch) ** 2 * feature_dim
    sinkhorn = 2 * (2 * global_batch + queue) * k * (2 * iters + 2)
    return 3 * (instance + sinkhorn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--per-gpu-batch", type=int, default=256)
    parser.add_argument("--tflops", type=float, default=60.0, help="sustained bf16 TFLOPS of one GPU (assumed)")
    parser.add_argument("--link-gbs", type=float, default=300.0, help="GB/s per GPU within a node (NVLink, achieved)")
    parser.add_argument("--network-gbs", type=float, default=25.0, help="GB/s per GPU between nodes (200 Gb/s NIC)")
    args = parser.parse_args()
    config = build_config(None, "clc-imagenet1k-64", epochs=1)
    opts, k, dim = config.method_options, config.n_clusters, config.model.feature_dim
    queue, iters = opts.sinkhorn_queue, opts.sinkhorn_iters
    per_image = step_flops_per_image(config)
    params = sum(p.numel() for p in build_method(config, (3, 64, 64)).parameters())
    print(f"clc-imagenet1k-64: {config.model.backbone} at {config.augment.size} px, K={k}, feature dim {dim}, "
          f"Sinkhorn queue {queue}, {params / 1e6:.1f} M parameters")
    print(f"counted: {per_image / 1e9:.1f} GFLOPs per image per step (two views, forward and backward)")
    print(f"assumed: {args.tflops:g} TFLOPS sustained per GPU; links {args.link_gbs:g} GB/s in a node, "
          f"{args.network_gbs:g} GB/s between nodes\n")
    print("| GPUs | global batch | network s / step | loss s / step | all-reduce s | all-gather MB / GPU | "
          "similarity matrix GB / GPU | step s | images/s | epoch | 400 epochs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for gpus in args.gpus:
        batch = args.per_gpu_batch * gpus
        network = per_image * args.per_gpu_batch / (args.tflops * 1e12)
        loss = loss_flops(batch, dim, k, queue, iters) / (args.tflops * 1e12)
        bandwidth = (args.link_gbs if gpus <= 8 else args.network_gbs) * 1e9
        allreduce = 0.0 if gpus == 1 else 2 * (gpus - 1) / gpus * params * 4 / bandwidth
        gathered = 2 * batch * (dim + k) * 4  # both views' features and logits in fp32, on every GPU
        similarity = (2 * batch) ** 2 * 4 * 3  # the fp32 logits, their softmax and its gradient
        step = network + loss + allreduce * 0.3  # DDP overlaps most of the all-reduce with backward
        rate = batch / step
        epoch = IMAGES / rate
        print(f"| {gpus} | {batch:,} | {network:.3f} | {loss:.4f} | {allreduce:.3f} | {gathered / 2**20:.0f} | "
              f"{similarity / 2**30:.2f} | {step:.3f} | {rate:,.0f} | {epoch / 60:.1f} min | {400 * epoch / 3600:.1f} h |")


if __name__ == "__main__":
    main()
