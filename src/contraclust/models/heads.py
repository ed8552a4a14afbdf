"""Projection heads. CC (spec section 1.1): instance head D->D->128 then L2 normalisation;
cluster head D->D->K then softmax. Neither has BatchNorm."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mlp_head(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))


class InstanceHead(nn.Module):
    """g_I: unit-norm instance embeddings (N, feature_dim)."""

    def __init__(self, in_dim: int, feature_dim: int = 128, hidden: int | None = None):
        super().__init__()
        self.net = mlp_head(in_dim, hidden or in_dim, feature_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(h), dim=1)


class ClusterHead(nn.Module):
    """g_C: cluster logits (N, K); ``forward`` returns the softmax assignment, ``logits`` the raw scores."""

    def __init__(self, in_dim: int, n_clusters: int, hidden: int | None = None):
        super().__init__()
        self.net = mlp_head(in_dim, hidden or in_dim, n_clusters)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(h).float(), dim=1)
