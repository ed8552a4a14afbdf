"""Equipartition by Sinkhorn-Knopp in the log domain (SwAV's form; spec ``drc_clc.md``, CLC)."""
from __future__ import annotations

import math

import torch


def sinkhorn(logits: torch.Tensor, epsilon: float = 0.05, n_iter: int = 3,
             extra_logits: torch.Tensor | None = None, tolerance: float | None = None) -> torch.Tensor:
    """Balanced soft assignment Q (B, K) of B samples to K clusters: each row sums to 1 and, as the
    iterations converge, each cluster receives B/K.

    S = exp(logits / epsilon); alternately scale every cluster (column) to mass 1/K and every sample
    (row) to mass 1/B, ``n_iter`` times; return B * Q. Done with logsumexp in float32, so bf16 inputs
    and K = 1000 are stable, and differentiable through the unrolled iterations. ``extra_logits``
    (e.g. a queue of recent batches, no gradient) join the column marginals, so that a batch smaller
    than K can still be balanced; only the rows of ``logits`` are returned. Memory is O(B x K).
    With ``tolerance``, iterate up to ``n_iter`` times but stop once every cluster's mass is within
    that relative tolerance of B/K (this reads the mass back to the host: for read-out, not training).
    """
    log_q = logits.float() / epsilon
    if extra_logits is not None and extra_logits.numel():
        log_q = torch.cat([log_q, extra_logits.detach().float() / epsilon])
    total, k = log_q.shape
    log_q = log_q - torch.logsumexp(log_q.flatten(), dim=0)
    for _ in range(n_iter):
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - math.log(k)
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(total)
        if tolerance is not None:
            column_mass = torch.exp(torch.logsumexp(log_q, dim=0) + math.log(k))
            if float((column_mass - 1).abs().max()) <= tolerance:
                break
    return torch.exp(log_q[: logits.shape[0]] + math.log(total))
