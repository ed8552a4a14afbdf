"""Cluster-level contrast on the columns of the soft-assignment matrix, and CC's entropy term."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from contraclust.losses.instance import nt_xent


def cluster_contrast(assign_a: torch.Tensor, assign_b: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """CC's cluster-level loss (eq. 5-6, official ``ClusterLoss`` without its entropy part).

    Each cluster k is represented by column k of the (N, K) assignments of a view. Columns are
    compared by cosine similarity / temperature; the positive is the same cluster in the other view,
    the other 2K-2 columns are negatives; averaged over the 2K columns. This is NT-Xent on
    L2-normalised columns. (H, N, K) inputs are H heads' assignments: one loss per head.
    """
    columns_a = F.normalize(assign_a.transpose(-1, -2), dim=-1, eps=1e-8)
    columns_b = F.normalize(assign_b.transpose(-1, -2), dim=-1, eps=1e-8)
    return nt_xent(columns_a, columns_b, temperature)


def marginal_entropy_penalty(assign: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
    """log K - H(p), p the batch-mean assignment (CC eq. 7 per view, official ``ne_i`` term).

    Zero when clusters are used equally, log K when one cluster takes everything. Natural log, no
    epsilon, as the official code. (H, N, K) inputs give one value per head. With a ``prior`` pi (K
    entries summing to 1) it is KL(p || pi), which is the same term when pi is uniform (ours).
    """
    p = assign.sum(dim=-2)
    p = p / p.sum(dim=-1, keepdim=True)
    if prior is not None:
        return (p * (torch.log(p) - torch.log(prior))).sum(dim=-1)
    return math.log(assign.shape[-1]) + (p * torch.log(p)).sum(dim=-1)
