"""DRC's losses (Zhong et al. 2020), spec ``drc_clc.md``: contrast on assignment features (rows of the
logits), on assignment probabilities (columns of the softmax), and the cluster regulariser."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from contraclust.losses.instance import nt_xent


def _similarity(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "cosine":
        return F.normalize(a, dim=1, eps=1e-8) @ F.normalize(b, dim=1, eps=1e-8).T
    if kind == "dot":
        return a @ b.T
    raise ValueError(f"similarity must be cosine or dot, got {kind!r}")


def cross_view_info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float, similarity: str = "cosine",
                        symmetric: bool = False) -> torch.Tensor:
    """-(1/N) sum_i log( exp(s(a_i, b_i)/t) / sum_j exp(s(a_i, b_j)/t) ): the positive is row i of the
    other view, the N-1 other rows of the other view are negatives (positive kept in the denominator).
    ``symmetric`` averages the a->b and b->a directions."""
    logits = _similarity(a, b, similarity) / temperature
    targets = torch.arange(a.shape[0], device=a.device)
    loss = F.cross_entropy(logits, targets)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.T, targets))
    return loss


def assignment_feature_loss(logits_a: torch.Tensor, logits_b: torch.Tensor, temperature: float = 0.5,
                            similarity: str = "cosine", negatives: str = "cross_view",
                            symmetric: bool = False) -> torch.Tensor:
    """L_AF on the rows z_i of the (N, K) pre-softmax logits (instance level).

    ``negatives``: ``cross_view`` (N-1 rows of the other view, the unofficial port's form) or
    ``nt_xent`` (2N-2 rows of both views, as CC's instance loss)."""
    if negatives == "nt_xent":
        if similarity == "cosine":
            logits_a, logits_b = F.normalize(logits_a, dim=1, eps=1e-8), F.normalize(logits_b, dim=1, eps=1e-8)
        return nt_xent(logits_a, logits_b, temperature)
    if negatives != "cross_view":
        raise ValueError(f"negatives must be cross_view or nt_xent, got {negatives!r}")
    return cross_view_info_nce(logits_a, logits_b, temperature, similarity, symmetric)


def assignment_probability_loss(probs_a: torch.Tensor, probs_b: torch.Tensor, temperature: float = 1.0,
                                similarity: str = "cosine") -> torch.Tensor:
    """L_AP = -(1/K) sum_k log( exp(s(q_k, q'_k)/t) / sum_l exp(s(q_k, q'_l)/t) ) over the columns q_k
    of the (N, K) probabilities: a K x K cross-view contrast (cluster level)."""
    return cross_view_info_nce(probs_a.T, probs_b.T, temperature, similarity)


def squared_mass_regulariser(probs: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
    """Form A: (1/N) sum_k (sum_i p_ik)^2, smallest (N/K) when every cluster holds N/K of the mass.
    With a ``prior`` pi (ours): (1/N) sum_k (sum_i p_ik)^2 / (K pi_k), smallest when the masses are in
    proportion to pi; the same term when pi is uniform."""
    mass = probs.sum(dim=0).pow(2)
    if prior is not None:
        mass = mass / (probs.shape[1] * prior)
    return mass.sum() / probs.shape[0]


def entropy_regulariser(probs: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
    """Form B (GCC): log K - H(mean_i p_i), zero for a uniform marginal; with a ``prior`` pi (ours),
    KL(mean p || pi), the same term when pi is uniform."""
    p = probs.mean(dim=0)
    log_p = torch.log(p.clamp_min(1e-12))
    if prior is not None:
        return (p * (log_p - torch.log(prior))).sum()
    return math.log(probs.shape[1]) + (p * log_p).sum()
