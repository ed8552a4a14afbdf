"""The cluster prior: what the balance term of a method pulls the cluster sizes towards.

CC's entropy term, DRC's regulariser and CLC's Sinkhorn marginals all assume equal clusters, which
splits large classes and merges small ones on imbalanced data (CC #25, SCAN #55/#113/#131). Ours,
shared by every method (``method.cluster_prior``):
- ``uniform`` (default): the published term, unchanged.
- ``none``: no balance term (CLC: no column constraint in Sinkhorn-Knopp).
- ``estimated``: the term pulls towards a prior re-estimated from the model's own assignments: a
  running mean (``prior_momentum``) of the batch-mean assignment, started uniform, with every cluster
  floored at ``prior_floor`` / K (then renormalised) so that no cluster can be emptied.
``prior_weight`` scales the method's own balance weight (CLC: the exponent of Sinkhorn's column
scaling, 1 = exact marginals).
"""
from __future__ import annotations

import torch
from torch import nn


class ClusterPrior(nn.Module):
    """Holds the estimated prior (a buffer, so a resumed run continues it) and gives each loss its target."""

    def __init__(self, n_clusters: int, mode: str, weight: float, floor: float, momentum: float):
        super().__init__()
        self.mode, self.floor, self.momentum = mode, floor, momentum
        self.weight = 0.0 if mode == "none" else weight
        if mode == "estimated":
            self.register_buffer("estimate", torch.full((n_clusters,), 1.0 / n_clusters))

    def target(self) -> torch.Tensor | None:
        """The prior pi the balance term pulls towards; None for uniform (the published form)."""
        if self.mode != "estimated":
            return None
        k = self.estimate.shape[0]
        floored = self.estimate.clamp_min(self.floor / k)
        return floored / floored.sum()

    @torch.no_grad()
    def observe(self, assignments: torch.Tensor) -> None:
        """Update the estimate from a training batch's (..., N, K) soft assignments (no gradient)."""
        if self.mode != "estimated" or not self.training:
            return
        mean = assignments.detach().float().reshape(-1, assignments.shape[-1]).mean(dim=0)
        self.estimate.mul_(self.momentum).add_((1 - self.momentum) * mean / mean.sum())


def prior_overrides(cluster_prior: str | None, prior_weight: float | None) -> list[str]:
    """``cluster_prior`` and ``prior_weight`` as the ``method.*`` overrides they stand for."""
    return ([f"method.cluster_prior={cluster_prior}"] if cluster_prior is not None else []) + (
        [f"method.prior_weight={prior_weight}"] if prior_weight is not None else [])
