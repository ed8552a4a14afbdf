"""The optimiser and its learning-rate schedule: linear warm-up, then constant or cosine decay to
``lr * min_lr_ratio``.

A time budget sets a run's length after its first steps, and may shorten it later (``refit``). The cosine then continues from
where it stands to its floor over the steps that remain, so the learning rate never jumps and the
schedule always ends whole at the last step. The state (total steps and the anchor of the last
shortening) is plain data that a checkpoint stores, so a resumed run follows the same curve.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from contraclust.errors import ConfigError


@dataclass
class LearningRateSchedule:
    base_lr: float
    total_steps: int
    warmup_steps: int = 0
    kind: str = "constant"
    min_lr_ratio: float = 0.0
    anchor_step: int = 0          # the step where the cosine was last re-fitted (0: never)
    anchor_progress: float = 0.0  # cosine progress (0..1) reached at ``anchor_step``

    def progress(self, step: int) -> float:
        """Fraction of the cosine done at ``step`` (0 during warm-up, 1 at the last step)."""
        if step < self.warmup_steps:
            return 0.0
        if self.anchor_step:  # (a step before the anchor, asked after a re-fit, keeps the anchor's progress)
            span = max(1, self.total_steps - self.anchor_step)
            done = max(0, step - self.anchor_step)
            return min(1.0, self.anchor_progress + (1 - self.anchor_progress) * done / span)
        return min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))

    def at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        if self.kind != "cosine":
            return self.base_lr
        floor = self.base_lr * self.min_lr_ratio
        return floor + (self.base_lr - floor) * 0.5 * (1 + math.cos(math.pi * self.progress(step)))

    def refit(self, total_steps: int, at_step: int) -> None:
        """End the schedule at ``total_steps`` instead, continuing smoothly from ``at_step``."""
        if at_step > self.warmup_steps:
            self.anchor_progress = self.progress(at_step)
            self.anchor_step = at_step
        self.total_steps = max(total_steps, at_step)

    def state(self) -> dict:
        return asdict(self)


def build_optimizer(optim, params, device: torch.device) -> torch.optim.Optimizer:
    """``optim`` (an OptimConfig): Adam, AdamW or SGD (Nesterov), fused on CUDA."""
    fused = {"fused": True} if device.type == "cuda" else {}
    if optim.name == "adam":
        return torch.optim.Adam(params, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay, **fused)
    if optim.name == "adamw":
        return torch.optim.AdamW(params, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay, **fused)
    if optim.name == "sgd":
        return torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay,
                               nesterov=True, **fused)
    raise ConfigError(f"optim.name must be adam, adamw or sgd, got {optim.name!r}")
