"""Where a run computes and in what precision: the device, autocast and memory-format decisions.

Measured on MNIST-5k's small CNN (batch 64, 2 cores, ``benchmarks/cpu_step.py``): channels_last
and bf16 autocast together make a CPU step 2.3x faster where oneDNN has native bf16 kernels
(AVX-512 BF16 / AMX), while on an AVX2-only CPU bf16 is emulated and 10x *slower*. So ``auto``
precision uses bf16 on CUDA always and on a CPU only when oneDNN reports bf16 support.
"""
from __future__ import annotations

import contextlib
import os
import resource
import sys

import torch

from contraclust.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(name: str | torch.device | None) -> torch.device:
    """``auto``/None: CUDA when present, else the CPU. A bad name or a missing GPU is a ConfigError.
    Under torchrun (``WORLD_SIZE`` > 1) every CUDA device is this process's own, ``cuda:$LOCAL_RANK``,
    so that work done before the trainer (a frozen backbone's embedding) is not piled onto GPU 0."""
    if isinstance(name, torch.device):
        device = name
    elif name in (None, "", "auto"):
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except (RuntimeError, TypeError):
            raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
        if device.type not in ("cpu", "cuda"):
            raise ConfigError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {name} requested but CUDA is not available; use --device cpu")
    if device.type == "cuda":
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if device.index is None:
            return torch.device("cuda", torch.cuda.current_device())
    return device


def configure_cuda(device: torch.device) -> None:
    """The speed settings of a CUDA run: cuDNN picks the fastest convolution algorithm for each shape
    (the shapes of a run are fixed), and fp32 matrix products may use TF32 (the papers' fp32 training,
    at the precision their GPUs' cuDNN used by default). Nothing on a CPU."""
    if device.type != "cuda":
        return
    torch.cuda.set_device(device)
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")


def cpu_has_fast_bf16() -> bool:
    """True where oneDNN runs bf16 convolutions natively (it says so only for AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.precision`` on ``device``; None means plain fp32."""
    if precision not in PRECISIONS:
        raise ConfigError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto" and (device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16())):
        return torch.bfloat16
    return None


def autocast_context(dtype: torch.dtype | None, device: torch.device):
    """A context manager that autocasts to ``dtype`` on ``device`` (nothing when ``dtype`` is None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def describe_precision(dtype: torch.dtype | None) -> str:
    return "bf16 autocast" if dtype is torch.bfloat16 else "fp32"


def peak_host_memory_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def peak_device_memory_mb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
