"""Equipartition by Sinkhorn-Knopp in the log domain (SwAV's form; spec ``drc_clc.md``, CLC)."""
from __future__ import annotations

import math

import torch


_EMPTY_ROW = -1e4  # the log-mass of a queue row not filled yet: exp() of it is 0 in float32


def sinkhorn(logits: torch.Tensor, epsilon: float = 0.05, n_iter: int = 3,
             extra_logits: torch.Tensor | None = None, tolerance: float | None = None,
             marginals: torch.Tensor | None = None, column_weight: float = 1.0,
             extra_rows: torch.Tensor | None = None) -> torch.Tensor:
    """Balanced soft assignment Q (B, K) of B samples to K clusters: each row sums to 1 and, as the
    iterations converge, each cluster receives B/K.

    S = exp(logits / epsilon); alternately scale every cluster (column) to mass 1/K and every sample
    (row) to mass 1/B, ``n_iter`` times; return B * Q. Done with logsumexp in float32, so bf16 inputs
    and K = 1000 are stable, and differentiable through the unrolled iterations. ``extra_logits``
    (e.g. a queue of recent batches, no gradient) join the column marginals, so that a batch smaller
    than K can still be balanced; only the rows of ``logits`` are returned. ``extra_rows`` (a 0-d
    tensor): how many leading rows of ``extra_logits`` hold data (a queue still filling); the others
    take no mass. It stays on the device, so a training step reads nothing back. Memory is O(B x K).
    With ``tolerance``, iterate up to ``n_iter`` times but stop once every cluster's mass is within
    that relative tolerance of B/K (this reads the mass back to the host: for read-out, not training).

    Ours, for imbalanced data: ``marginals`` pi (K entries summing to 1) give cluster k the mass
    B * pi_k instead of B/K; ``column_weight`` w in [0, 1] applies each column scaling to the power w
    (the unbalanced-transport relaxation): 1 is the exact constraint, 0 none (a softmax of each row).
    """
    log_q = logits.float() / epsilon
    batch = logits.shape[0]
    filled = None  # rows that take part: all of them unless a queue is still filling
    if extra_logits is not None and extra_logits.numel():
        extra = extra_logits.detach().float() / epsilon
        if extra_rows is not None:
            filled = torch.cat([torch.ones(batch, dtype=torch.bool, device=log_q.device),
                                torch.arange(extra.shape[0], device=log_q.device) < extra_rows])[:, None]
            extra = torch.where(filled[batch:], extra, _EMPTY_ROW)
        log_q = torch.cat([log_q, extra])
    k = log_q.shape[1]
    log_total = (math.log(log_q.shape[0]) if filled is None else torch.log(filled.sum().float()))
    log_target = (torch.full((k,), -math.log(k), device=log_q.device) if marginals is None
                  else torch.log(marginals.float().to(log_q.device)))
    log_q = log_q - torch.logsumexp(log_q.flatten(), dim=0)
    for _ in range(n_iter):
        log_q = log_q - column_weight * (torch.logsumexp(log_q, dim=0, keepdim=True) - log_target)
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - log_total
        if filled is not None:
            log_q = torch.where(filled, log_q, _EMPTY_ROW)  # an empty row keeps no mass
        if tolerance is not None:
            column_mass = torch.exp(torch.logsumexp(log_q, dim=0) - log_target)
            if float((column_mass - 1).abs().max()) <= tolerance:
                break
    return torch.exp(log_q[:batch] + log_total)


@torch.no_grad()
def sinkhorn_readout(log_scores: torch.Tensor, n_iter: int, tolerance: float | None = None,
                     marginals: torch.Tensor | None = None, column_weight: float = 1.0,
                     chunk_rows: int = 65536) -> torch.Tensor:
    """``sinkhorn(log_scores * epsilon, epsilon, ...)`` for a whole evaluated set, without its N x K working
    copies: the iterates are kept as a row and a column scaling (log Q_ij = S_ij + u_i + v_j) and every pass
    over the scores S goes ``chunk_rows`` rows at a time, so memory is the scores, the result and one chunk
    (at N = 200,000 and K = 1000 the whole-matrix iterations had taken 5 GB). The same iterations, the same
    stop (every column's mass within ``tolerance`` of its target), the same rows summing to 1."""
    n, k = log_scores.shape
    device = log_scores.device
    chunks = [slice(s, min(s + chunk_rows, n)) for s in range(0, n, chunk_rows)]

    def column_lse(u: torch.Tensor) -> torch.Tensor:
        parts = torch.stack([torch.logsumexp(log_scores[c].float() + u[c, None], dim=0) for c in chunks])
        return torch.logsumexp(parts, dim=0)

    log_total = math.log(n)
    log_target = (torch.full((k,), -math.log(k), device=device) if marginals is None
                  else torch.log(marginals.float().to(device)))
    whole = torch.logsumexp(torch.stack([torch.logsumexp(log_scores[c].float().flatten(), 0) for c in chunks]), 0)
    u, v = torch.full((n,), -float(whole), device=device), torch.zeros(k, device=device)
    for step in range(n_iter):
        columns = column_lse(u)
        if step and tolerance is not None and float((torch.exp(columns + v - log_target) - 1).abs().max()) <= tolerance:
            break
        v = v - column_weight * (v + columns - log_target)
        u = torch.cat([-torch.logsumexp(log_scores[c].float() + v, dim=1) for c in chunks]) - log_total
    return torch.cat([torch.exp(log_scores[c].float() + u[c, None] + v + log_total) for c in chunks])
