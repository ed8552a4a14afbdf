"""Nearest-neighbour positives for images, mined from the network's own embedding while it trains.

Raw pixels are no measure of which photos show the same kind of thing, so images cannot have their
neighbours found once at the start as feature vectors do. SCAN (Van Gansbeke et al. 2020) mines them from
a trained network's features instead; here that happens inside the contrastive stage: once
``augment.neighbour_start`` of the training steps are done, each sample's ``augment.neighbours`` nearest
neighbours are searched among the backbone's L2-normalised features of the un-augmented images (cosine,
the search of ``augment.neighbours``), and searched again every ``augment.neighbour_refresh`` epochs as
the features improve. From then on the second view of a sample is, with probability ``neighbour_p``, a
view of one of its neighbours (``NeighbourPartner``). The neighbours and the epoch they were found at are
part of a checkpoint, so that a resumed run continues with the same ones.
"""
from __future__ import annotations

import time
from typing import Any

import torch

from contraclust.augment.neighbours import NeighbourPartner, search_neighbours
from contraclust.config import AugmentConfig
from contraclust.console import say
from contraclust.training.distributed import broadcast_buffers
from contraclust.training.inference import embed_samples


class NeighbourMiner:
    """When to search an image set's neighbours in the current embedding, and the search itself."""

    def __init__(self, augment: AugmentConfig, seed: int):
        self.k = augment.neighbours
        self.p = augment.neighbour_p
        self.start = augment.neighbour_start
        self.refresh = augment.neighbour_refresh
        self.seed = seed
        self.mined_at: int | None = None  # the epoch whose start last searched them
        self.indices: torch.Tensor | None = None

    def due(self, epoch: int, step: int, total_steps: int) -> bool:
        """Whether the epoch starting now (after ``step`` of ``total_steps``) searches them (again)."""
        if step < self.start * total_steps:
            return False
        return self.mined_at is None or epoch - self.mined_at >= self.refresh

    def mine(self, trainer, epoch: int) -> NeighbourPartner:
        """Search the neighbours in ``trainer``'s current embedding of its data; the partner that draws them."""
        began = time.perf_counter()
        if trainer.dist.enabled:
            broadcast_buffers(trainer.method)  # every rank embeds with rank 0's BatchNorm statistics
        features = embed_samples(trainer.method, trainer.augment, trainer.samples, trainer.config.train.eval_batch_size,
                                 trainer.autocast, trainer.use_channels_last)
        found = search_neighbours(torch.from_numpy(features).to(trainer.device), self.k, seed=self.seed + epoch)
        self.mined_at, self.indices = epoch, found.indices
        if trainer.dist.is_main:
            say(f"epoch {epoch}: nearest-neighbour positives mined from the network's embedding, "
                f"{found.indices.shape[1]} per sample by {found.describe()}, in {time.perf_counter() - began:.1f} s; "
                f"the second view is a neighbour with p = {self.p}")
        return self.partner()

    def partner(self) -> NeighbourPartner | None:
        return None if self.indices is None else NeighbourPartner(self.indices, self.p)

    def state(self) -> dict[str, Any]:
        return {"mined_at": self.mined_at, "indices": None if self.indices is None else self.indices.cpu()}

    def load_state(self, state: dict[str, Any] | None, device: torch.device) -> NeighbourPartner | None:
        """Restore what a checkpoint holds; the partner to train with (None before the first search)."""
        if state:
            self.mined_at = state["mined_at"]
            self.indices = None if state["indices"] is None else state["indices"].to(device)
        return self.partner()
