"""A thin layer over ``torch.distributed`` for torchrun launches: nothing here is a cluster manager.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the process group is initialised with
nccl on CUDA and gloo on CPU. ``gather`` concatenates a per-rank batch into the global batch and
keeps gradients, so every loss sees all negatives.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from contraclust.console import say
from contraclust.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistContext:
    """Join the torchrun process group if one is described by the environment; else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


# torch 2.13 renamed the single-tensor collectives (the old names warn); older torch has only the old names.
_ALL_GATHER_SINGLE = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
_REDUCE_SCATTER_SINGLE = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor


class _GatherRows(torch.autograd.Function):
    """All ranks' rows in rank order; the backward hands each rank the sum over ranks of the gradient
    of its own rows. Written here rather than taken from ``torch.distributed.nn.functional.all_gather``,
    whose gloo backward returned wrong gradients for non-contiguous (e.g. transposed or expanded)
    incoming gradients in torch 2.13: CC's cluster contrast transposes the gathered assignments, and
    a two-process CC run collapsed to one cluster."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size()
        ctx.rank, ctx.rows = dist.get_rank(), tensor.shape[0]
        out = tensor.new_empty((world * tensor.shape[0], *tensor.shape[1:]))
        _ALL_GATHER_SINGLE(out, tensor.contiguous())
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        if dist.get_backend() == "nccl":
            mine = grad.new_empty((ctx.rows, *grad.shape[1:]))
            _REDUCE_SCATTER_SINGLE(mine, grad.contiguous())
            return mine
        total = grad.clone(memory_format=torch.contiguous_format)  # never reduce into autograd's own buffer
        dist.all_reduce(total)
        return total[ctx.rank * ctx.rows: (ctx.rank + 1) * ctx.rows]


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """All ranks' rows concatenated in rank order, differentiable (identity in a single process). Every
    rank must give the same number of rows (the trainer's batches split evenly: drop_last)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    return _GatherRows.apply(tensor)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable sum over ranks (identity in a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(tensor)


def gather_objects(obj):
    """Every rank's picklable object, in rank order (a one-element list in a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm's running statistics) on every rank, in place (nothing in a single
    process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_flag(flag: bool) -> bool:
    """True on every rank if ``flag`` is true on any rank (used to stop all ranks together)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def broadcast_object(obj):
    """Rank 0's picklable object on every rank (the object itself in a single process): decisions
    taken from timings, such as a time budget's plan, must be the same on every rank."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# DDP's switch for not broadcasting buffers at every forward (torch 2.13 renamed it; older torch knows the old name)
_NO_FORWARD_BUFFER_SYNC = ({"forward_sync_buffers": False}
                           if "forward_sync_buffers" in inspect.signature(nn.parallel.DistributedDataParallel).parameters
                           else {"broadcast_buffers": False})


def check_distributed(config, context: DistContext, device: torch.device) -> None:
    """What a run over several processes needs: a global batch that splits evenly into equal batches on
    every rank (the gather of outputs takes the same rows from each), and SyncBatchNorm only on GPUs."""
    if not context.enabled:
        return
    train = config.train
    if train.batch_size % context.world_size:
        raise ConfigError(f"batch size {train.batch_size} must divide by the {context.world_size} processes")
    if not train.drop_last:
        raise ConfigError(f"train.drop_last=false is not possible with {context.world_size} processes: the last "
                          f"batch of an epoch would split unevenly over them; keep drop_last=true")
    if train.sync_batchnorm and device.type != "cuda":
        raise ConfigError("train.sync_batchnorm needs CUDA devices (PyTorch's SyncBatchNorm runs on GPUs only); "
                          "drop it on the CPU")


def wrap_model(method: nn.Module, context: DistContext, device: torch.device, train) -> tuple[nn.Module, ...]:
    """(the method, SyncBatchNorm'd with ``train.sync_batchnorm`` over several processes; the model the steps
    call: it, or DDP around it; what the forward runs: that, compiled on CUDA with ``train.compile``)."""
    sync_batchnorm = context.enabled and train.sync_batchnorm
    if sync_batchnorm:
        method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
    model: nn.Module = method
    if context.enabled:
        # Buffers (BatchNorm's running statistics) are not broadcast at every forward: only evaluation reads
        # them, and the trainer's ``predict`` takes rank 0's first. The others (CLC's queue, CC's head losses,
        # the cluster prior) are computed from the gathered global batch, hence equal on every rank.
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(method, device_ids=ids, **_NO_FORWARD_BUFFER_SYNC)
    on_cuda = device.type == "cuda"
    if train.compile and on_cuda and sync_batchnorm and context.is_main:
        say("train.compile is off for the model: SyncBatchNorm's collectives do not compile")
    return method, model, torch.compile(model) if train.compile and on_cuda and not sync_batchnorm else model
