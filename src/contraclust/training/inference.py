"""Inference with a trained method: cluster probabilities and embeddings of un-augmented samples, in
batches, under the run's precision and memory format (and split over processes when distributed)."""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from contraclust.methods import ClusteringMethod
from contraclust.training.distributed import DistContext, gather_objects


@torch.no_grad()
def predict_probabilities(method: ClusteringMethod, augment, samples: torch.Tensor, batch_size: int,
                          autocast=contextlib.nullcontext, channels_last: bool = False,
                          dist_ctx: DistContext = DistContext()) -> tuple[np.ndarray, np.ndarray]:
    was_training = method.training
    method.eval()
    n, device = samples.shape[0], _device_of(method)
    chunks = []
    for start in range(dist_ctx.rank * batch_size, n, batch_size * dist_ctx.world_size):
        x = augment.eval_view(samples[start: start + batch_size].to(device, non_blocking=True))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            chunks.append((start, method.cluster_probabilities(x).float().cpu()))
    method.train(was_training)
    gathered = gather_objects(chunks) if dist_ctx.world_size > 1 else [chunks]  # a lone caller gathers nothing
    ordered = sorted(((s, p) for rank_chunks in gathered for s, p in rank_chunks), key=lambda sp: sp[0])
    probabilities = method.readout(torch.cat([p for _, p in ordered])).numpy()
    return probabilities.argmax(axis=1), probabilities


@torch.no_grad()
def embed_samples(method: ClusteringMethod, augment, samples: torch.Tensor, batch_size: int,
                  autocast=contextlib.nullcontext, channels_last: bool = False) -> np.ndarray:
    """(N, D) embeddings (``method.embed``: the backbone's L2-normalised features) of un-augmented samples."""
    was_training = method.training
    method.eval()
    chunks, device = [], _device_of(method)
    for start in range(0, samples.shape[0], batch_size):
        x = augment.eval_view(samples[start: start + batch_size].to(device, non_blocking=True))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            chunks.append(method.embed(x).float().cpu())
    method.train(was_training)
    return torch.cat(chunks).numpy()


def _device_of(method: ClusteringMethod) -> torch.device:
    """Where the method's weights are (the samples may be in host memory when streamed)."""
    return next(method.parameters()).device
