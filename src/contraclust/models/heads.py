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


class ClusterHeads(nn.Module):
    """H independent cluster heads D->hidden->K (each as ``ClusterHead``) evaluated as one batched
    product; ``forward`` returns the (N, H, K) softmax assignments, rows first so that gathering over
    processes concatenates samples. Each head is initialised as ``nn.Linear`` initialises."""

    def __init__(self, in_dim: int, n_clusters: int, hidden: int | None, n_heads: int):
        super().__init__()
        hidden = hidden or in_dim
        layers = [(nn.Linear(in_dim, hidden), nn.Linear(hidden, n_clusters)) for _ in range(n_heads)]
        self.weight1 = nn.Parameter(torch.stack([first.weight.T for first, _ in layers]).detach())
        self.bias1 = nn.Parameter(torch.stack([first.bias for first, _ in layers]).detach()[:, None])
        self.weight2 = nn.Parameter(torch.stack([second.weight.T for _, second in layers]).detach())
        self.bias2 = nn.Parameter(torch.stack([second.bias for _, second in layers]).detach()[:, None])

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(torch.baddbmm(self.bias1, h.expand(self.weight1.shape[0], *h.shape), self.weight1))
        return torch.baddbmm(self.bias2, hidden, self.weight2).transpose(0, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(h).float(), dim=-1)
