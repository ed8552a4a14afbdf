"""Inference with a trained method: cluster probabilities and embeddings of un-augmented samples, in
batches, under the run's precision and memory format (and split over processes when distributed); and
a trained method from a checkpoint, for the faces (predict, evaluate, the report, the estimator).

Batches arrive as ``(first row, samples on the device)``: slices of a tensor (``tensor_batches``), or
a streamed source's batches gathered on its background thread (the trainer's), so that a set too
large for the device is evaluated the way it is trained. The per-sample probabilities stay on the
device, and the method's read-out of the whole set (CLC's Sinkhorn-Knopp over all of it) runs there.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from contraclust.augment import build_augmenter
from contraclust.config import RunConfig, config_from_dict
from contraclust.data import Samples
from contraclust.errors import ConfigError, DataError
from contraclust.methods import ClusteringMethod, build_method
from contraclust.readout import Readout, map_rows
from contraclust.training.checkpoint import load_checkpoint
from contraclust.training.device import autocast_context, autocast_dtype, resolve_device
from contraclust.training.distributed import DistContext, gather_objects


def eval_starts(n: int, batch_size: int, dist_ctx: DistContext = DistContext()) -> list[int]:
    """The first row of each evaluation batch this process takes (batches are dealt out round-robin)."""
    return list(range(dist_ctx.rank * batch_size, n, batch_size * dist_ctx.world_size))


def tensor_batches(samples: torch.Tensor, batch_size: int, device: torch.device,
                   dist_ctx: DistContext = DistContext()) -> Iterator[tuple[int, torch.Tensor]]:
    """This process's evaluation batches of ``samples`` (on any device), moved to ``device``."""
    for start in eval_starts(samples.shape[0], batch_size, dist_ctx):
        yield start, samples[start: start + batch_size].to(device, non_blocking=True)


@torch.no_grad()
def predict_probabilities(method: ClusteringMethod, augment, samples: torch.Tensor | None, batch_size: int,
                          autocast=contextlib.nullcontext, channels_last: bool = False,
                          dist_ctx: DistContext = DistContext(),
                          batches: Iterable[tuple[int, torch.Tensor]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels, (N, K) probabilities) of ``samples``, or of the given ``batches`` of them (then
    ``samples`` may be None), read out by the method over the whole set."""
    device = _device_of(method)
    if batches is None:
        batches = tensor_batches(samples, batch_size, device, dist_ctx)
    was_training = method.training
    method.eval()
    chunks = []
    for start, rows in batches:
        x = augment.eval_view(rows.to(device, non_blocking=True))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            chunks.append((start, method.cluster_probabilities(x).float()))
    method.train(was_training)
    if dist_ctx.world_size > 1:  # every rank's chunks, on the host for the exchange, then back on the device
        gathered = gather_objects([(s, p.cpu()) for s, p in chunks])
        chunks = [(s, p.to(device)) for rank_chunks in gathered for s, p in rank_chunks]
    ordered = [p for _, p in sorted(chunks, key=lambda sp: sp[0])]
    probabilities = method.readout(torch.cat(ordered)).cpu().numpy()
    return probabilities.argmax(axis=1), probabilities


@torch.no_grad()
def embed_samples(method: ClusteringMethod, augment, samples: torch.Tensor, batch_size: int,
                  autocast=contextlib.nullcontext, channels_last: bool = False) -> np.ndarray:
    """(N, D) embeddings (``method.embed``: the backbone's L2-normalised features) of un-augmented samples."""
    was_training = method.training
    method.eval()
    chunks, device = [], _device_of(method)
    for _, rows in tensor_batches(samples, batch_size, device):
        x = augment.eval_view(rows)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            chunks.append(method.embed(x).float().cpu())
    method.train(was_training)
    return torch.cat(chunks).numpy()


def _device_of(method: ClusteringMethod) -> torch.device:
    """Where the method's weights are (the samples may be in host memory when streamed)."""
    return next(method.parameters()).device


def load_model(checkpoint: str | Path, sample_shape: tuple[int, ...]) -> tuple[torch.nn.Module, RunConfig]:
    """A trained method and its config from a checkpoint file or run folder."""
    state = load_checkpoint(checkpoint)
    config = config_from_dict(state["config"])
    return model_from_state(state, config, sample_shape, checkpoint), config


def model_from_state(state: dict, config: RunConfig, sample_shape: tuple[int, ...], source) -> torch.nn.Module:
    """The method of ``config`` for samples of ``sample_shape``, with the weights in checkpoint ``state``."""
    try:
        method = build_method(config, sample_shape)
        method.load_state_dict(state["model"])
    except (RuntimeError, ConfigError):
        trained = (state.get("data_fingerprint") or {}).get("shape")
        raise DataError(f"the model in {source} takes samples of shape "
                        f"{'x'.join(map(str, trained)) if trained else 'other than these'}; the data's are "
                        f"{'x'.join(map(str, sample_shape))}") from None
    return method


def predict_and_embed(method: torch.nn.Module, config: RunConfig, data: Samples, device: str | None):
    """(labels, probabilities, embeddings) of ``data`` under the run's read-out, precision and format."""
    labels, probabilities = predict_data(method, config, data, device)
    return labels, probabilities, embed_data(method, config, data, device)


def _inference_setup(method: torch.nn.Module, config: RunConfig, data: Samples, device: torch.device):
    """The method on ``device`` in the run's memory format, and the run's autocast."""
    channels_last = config.train.channels_last and data.is_image
    method.to(device, memory_format=torch.channels_last) if channels_last else method.to(device)
    dtype = autocast_dtype(config.train.precision, device)
    return method, channels_last, lambda: autocast_context(dtype, device)


def predict_data(method: torch.nn.Module, config: RunConfig, data: Samples, device: str | None):
    """Probabilities under the same precision and memory format as the run's own evaluations."""
    dev = resolve_device(device)
    method, channels_last, autocast = _inference_setup(method, config, data, dev)
    augment = build_augmenter(config.augment, data.is_image)
    return predict_probabilities(method, augment, data.tensor, config.train.eval_batch_size, autocast,
                                 channels_last)


def embed_data(method: torch.nn.Module, config: RunConfig, data: Samples, device: str | None,
               rows: np.ndarray | None = None) -> np.ndarray:
    """(N, D) embeddings (of ``rows`` only, when given) under the same precision and memory format as the
    run's own evaluations."""
    dev = resolve_device(device)
    method, channels_last, autocast = _inference_setup(method, config, data, dev)
    samples = data.tensor if rows is None else data.tensor[torch.as_tensor(rows, dtype=torch.long)]
    return embed_samples(method, build_augmenter(config.augment, data.is_image), samples,
                         config.train.eval_batch_size, autocast, channels_last)


def readout_of(method: torch.nn.Module, config: RunConfig, data: Samples, device: str | None) -> Readout:
    """What a run writes at its end (``readout.npz``), of ``data``: every sample's probabilities and the
    embeddings of the map's sample."""
    rows = map_rows(len(data))
    return Readout(predict_data(method, config, data, device)[1], rows, embed_data(method, config, data, device, rows))


def predict_checkpoint(checkpoint: str | Path, data: Samples, device: str | None = "auto"):
    """(labels, probabilities, config) of ``data`` under the model in ``checkpoint``."""
    method, config = load_model(checkpoint, data.sample_shape)
    labels, probabilities = predict_data(method, config, data, device)
    return labels, probabilities, config
