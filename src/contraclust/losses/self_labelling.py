"""Self-labelling: cross-entropy of strong views against the confident predictions of clean ones.

SCAN (Van Gansbeke et al., ECCV 2020, eq. 3 and the official ``ConfidenceBasedCE``) and TCL's boosting
stage (spec ``cc_c3_tcl.md`` section 3, item 5) end their training so:

    L = - sum_{i in S} w_{y_i} log p(y_i | strong(x_i)) / sum_{i in S} w_{y_i},   y_i = argmax p(. | x_i)

over the selected samples S of the batch. SCAN selects every sample whose clean prediction passes the
threshold alpha (0.99); TCL keeps, per cluster, at most ceil(B/K gamma) of the most confident of those
(gamma = 0.5), which stops a large cluster from filling the batch's labels. With ``balanced`` the
weight of pseudo-label c is the inverse of its frequency among the selected (SCAN's and TCL's class
balancing: w_c = |S| / n_c); else 1. Pure tensor work, no host read: a batch with no confident sample
gives a loss of 0 (SCAN raises there; a stage that starts unsure then waits for the network instead).
"""
from __future__ import annotations

import math

import torch


def confident_rows(clean: torch.Tensor, threshold: float, per_cluster_share: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(selected mask, pseudo-labels) of the (B, K) clean probabilities: confidence above ``threshold`` and,
    with ``per_cluster_share`` gamma > 0, among the ceil(B/K gamma) most confident rows of their cluster."""
    confidence, labels = clean.max(dim=1)
    selected = confidence > threshold
    if per_cluster_share > 0:
        b, k = clean.shape
        allowed = math.ceil(b / k * per_cluster_share)
        order = torch.argsort(labels.float() * 2.0 - confidence, stable=True)  # by cluster, surest first
        sorted_labels = labels[order]
        first_of_cluster = torch.searchsorted(sorted_labels, sorted_labels, right=False)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(b, device=clean.device) - first_of_cluster
        selected = selected & (rank < allowed)
    return selected, labels


def balanced_weights(labels: torch.Tensor, selected: torch.Tensor, k: int) -> torch.Tensor:
    """Per-class weights |S| / n_c over the selected rows (0 for a class none of them has)."""
    counts = torch.zeros(k, device=labels.device).index_add_(0, labels, selected.float())
    return torch.where(counts > 0, counts.sum() / counts.clamp_min(1.0), torch.zeros_like(counts))


def self_labelling_loss(clean: torch.Tensor, strong: torch.Tensor, threshold: float = 0.99,
                        per_cluster_share: float = 0.0, balanced: bool = True,
                        eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, share of the batch selected) for (B, K) probabilities of clean and strong views (module
    docstring). ``clean`` carries no gradient."""
    selected, labels = confident_rows(clean.detach(), threshold, per_cluster_share)
    k = clean.shape[1]
    weights = balanced_weights(labels, selected, k) if balanced else torch.ones(k, device=clean.device)
    row_weight = weights[labels] * selected.float()
    nll = -torch.log(strong.gather(1, labels[:, None]).squeeze(1).clamp_min(eps))
    loss = (row_weight * nll).sum() / row_weight.sum().clamp_min(eps)
    return loss, selected.float().mean()
