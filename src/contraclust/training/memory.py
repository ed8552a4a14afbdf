"""How much device memory a training step needs: measured from the tensors autograd keeps for backward.

A step holds the model's weights, their gradients and the optimiser's two moments (4 x the weights),
and, from the forward pass until backward frees them, the activations autograd saves. Those are
counted here by running the method's forward on a couple of real views under a
``saved_tensors_hooks`` probe, each storage once (in-place ops and views share storage: counting
tensors instead would double ResNet's ReLU and BatchNorm saves), weights excluded. The probe runs
on a copy of the buffers, so BatchNorm's running statistics are left as they were.

Calibration: CC's ResNet-34 at 224 px in fp32 counts 82 MB per image (two views), 21 GB at batch 256,
where CC's maintainers report that batch 256 fits a 24 GB GPU (CC issue #49); ``benchmarks/
activation_memory.py`` prints the figure for every preset.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from contraclust.augment import build_augmenter
from contraclust.errors import ConfigError

ACTIVATION_MARGIN = 1.5  # backward's transient gradients and workspaces, on top of the saved activations


@torch.no_grad()
def _buffers_copy(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: buffer.clone() for name, buffer in module.named_buffers()}


def saved_bytes(method: nn.Module, view_a: torch.Tensor, view_b: torch.Tensor,
                autocast=contextlib.nullcontext) -> int:
    """Bytes autograd saves for backward in one forward of ``method`` on the given views, weights excluded."""
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    weights = {p.untyped_storage().data_ptr() for p in method.parameters()}
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), autocast():
        torch.func.functional_call(method, _buffers_copy(method), (view_a, view_b))
    return sum(size for pointer, size in saved.items() if pointer not in weights)


def activation_bytes(method: nn.Module, view_a: torch.Tensor, view_b: torch.Tensor,
                     autocast=contextlib.nullcontext) -> tuple[float, float]:
    """(bytes per sample, fixed bytes) that autograd saves in a forward on two views: the growth from half
    the probe batch to all of it is per sample; the rest is saved once whatever the batch (under autocast,
    the low-precision copies of the weights: 9 MB for CC's five heads of K = 1000, which a probe of two
    samples had counted as 4.5 MB per sample). A probe of fewer than 4 samples counts everything per sample."""
    n = view_a.shape[0]
    full = saved_bytes(method, view_a, view_b, autocast)
    if n < 4:
        return full / n, 0.0
    half = n // 2
    per_sample = max(0.0, (full - saved_bytes(method, view_a[:half], view_b[:half], autocast)) / (n - half))
    return per_sample, max(0.0, full - per_sample * n)


def activation_bytes_per_sample(method: nn.Module, view_a: torch.Tensor, view_b: torch.Tensor,
                                autocast=contextlib.nullcontext) -> float:
    """Bytes autograd saves per sample (both views), without what a forward saves once (``activation_bytes``)."""
    return activation_bytes(method, view_a, view_b, autocast)[0]


def model_state_bytes(method: nn.Module) -> int:
    """The weights, their gradients and two optimiser moments."""
    return 4 * sum(p.numel() * p.element_size() for p in method.parameters())


def step_bytes(method: nn.Module, per_sample: float, local_batch: int, fixed: float = 0.0) -> int:
    """What a training step of ``local_batch`` samples needs on the device, besides the data."""
    return int(ACTIVATION_MARGIN * (per_sample * local_batch + fixed) + model_state_bytes(method))


def measure_step_bytes(method: nn.Module, augment_config, samples: torch.Tensor, is_image: bool,
                       device: torch.device, local_batch: int, autocast=contextlib.nullcontext,
                       channels_last: bool = False) -> int:
    """``step_bytes`` for ``local_batch`` samples, measured on two views of the first four ``samples``
    (made with a generator of its own, so that the run's random streams are untouched)."""
    probe = samples[: min(4, len(samples))].to(device)
    augment = build_augmenter(augment_config, is_image, probe, device)
    generator = torch.Generator(device=device).manual_seed(0)
    views = [augment(probe, generator) for _ in range(2)]
    if channels_last:
        views = [v.contiguous(memory_format=torch.channels_last) for v in views]
    per_sample, fixed = activation_bytes(method, *views, autocast)
    return step_bytes(method, per_sample, local_batch, fixed)


def largest_batch(per_sample: float, state_bytes: int, device_bytes: float, data_bytes: float = 0.0,
                  reserve_bytes: float = 4 * 2 ** 30) -> int:
    """The largest per-device batch whose step fits ``device_bytes`` beside the resident data, the model
    state and a reserve (CUDA's context, cuDNN's workspaces, the allocator's slack)."""
    room = device_bytes - data_bytes - state_bytes - reserve_bytes
    return max(0, int(room // (ACTIVATION_MARGIN * per_sample)))


def _gb(nbytes: float) -> str:
    return f"{nbytes / 2 ** 30:.1f} GB"


def check_model_fits(config, sample_shape: tuple[int, ...], device: torch.device) -> None:
    """Refuse, before anything is allocated, a model whose weights, gradients and optimiser moments alone
    would not fit the device's free memory (counted on a model built on the meta device: no memory)."""
    from contraclust.methods import build_method
    from contraclust.training.streaming import free_memory_bytes

    with torch.device("meta"):
        method = build_method(config, sample_shape)
    needed, free = model_state_bytes(method), free_memory_bytes(device)
    if needed > 0.8 * free:
        weights = sum(p.numel() for p in method.parameters())
        raise ConfigError(f"the model ({weights:,} weights: {config.model.backbone}, width {config.model.width}) needs "
                          f"{_gb(needed)} for its weights, gradients and optimiser, and {device} has {_gb(free)} "
                          f"free: choose a smaller model (model.width, model.head_hidden)")


def check_step_fits(needed: int, device: torch.device, batch: int) -> None:
    """Refuse a training step that would not fit the device's free memory (the data already placed)."""
    from contraclust.training.streaming import free_memory_bytes

    free = free_memory_bytes(device)
    if needed > free:
        raise ConfigError(f"a training step of {batch} samples needs about {_gb(needed)} on {device}, which has "
                          f"{_gb(free)} free: lower --batch-size or the input size (augment.size, --image-size)")
