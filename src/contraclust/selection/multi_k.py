"""Cluster heads of several K on one backbone (PICA's and SCAN's over-clustering), for suggest-k.

Two stages, so that the many heads neither dilute nor bias the representation:
1. ``InstanceContrast`` trains the backbone with losses that name no K: CC's instance loss (spec 1.1,
   NT-Xent on the rows), then C3's cross-instance loss (spec 2.2: pairs more similar than zeta are
   positives too), which gathers similar samples into groups of whatever number the data has.
2. ``train_heads`` freezes that backbone, embeds several augmented views of every sample once (a
   ``FeatureBank``), and trains ``replicas`` heads per K on random pairs of those views with CC's
   cluster loss for their K (spec 1.2: column contrast + marginal entropy). The heads are tiny, so
   this stage costs seconds where training them through the backbone would cost the whole budget.
Each K has ``replicas`` heads started apart, so that how much they agree measures how stable that K's
partition is.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from contraclust.console import progress_iter
from contraclust.losses import cluster_contrast, cross_instance_loss, marginal_entropy_penalty, nt_xent
from contraclust.methods.base import ClusteringMethod
from contraclust.methods.cc import CCOptions
from contraclust.models import ClusterHeads, InstanceHead

BANK_BYTES = 2 * 1024 ** 3  # the views of the feature bank are cut to fit this


class InstanceContrast(ClusteringMethod):
    """Stage 1: a backbone and CC's instance head, trained with the instance loss, or with C3's
    cross-instance loss once ``zeta`` is set (temperature 1, as C3's official code)."""

    name = "instance-contrast"
    summary = "CC's instance-level contrast alone (suggest-k's representation stage)"
    Options = CCOptions

    def __init__(self, backbone, options: CCOptions, model_cfg, zeta: float | None = None):
        super().__init__(backbone, 1, options, model_cfg)
        self.instance_head = InstanceHead(backbone.out_dim, model_cfg.feature_dim, model_cfg.head_hidden)
        self.zeta = zeta

    def forward(self, view_a, view_b):
        h_a, h_b = self.encode_pair(view_a, view_b)
        return {"z_a": self.instance_head(h_a), "z_b": self.instance_head(h_b)}

    def loss(self, outputs):
        if self.zeta is not None:
            c3 = cross_instance_loss(outputs["z_a"], outputs["z_b"], self.zeta, 1.0)
            return c3, {"c3": c3}
        instance = nt_xent(outputs["z_a"], outputs["z_b"], self.options.tau_instance)
        return instance, {"instance": instance}

    def cluster_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """One cluster for everything: this stage has no clusters yet (the trainer's read-out asks)."""
        return torch.ones(len(x), 1, device=x.device)


@dataclass
class FeatureBank:
    """The frozen backbone's L2-normalised features, on the training device: ``clean`` (N, D) of the
    un-augmented samples and ``views`` (V, N, D) of V augmented views (V even, at least 2)."""

    clean: torch.Tensor
    views: torch.Tensor


@torch.no_grad()
def build_feature_bank(trainer, n_views: int, progress: bool = True) -> FeatureBank:
    """Embed the samples and ``n_views`` augmented views of them (fewer if they would pass ``BANK_BYTES``)
    with ``trainer.method.backbone`` in eval mode."""
    backbone = trainer.method.backbone
    backbone.eval()
    n, batch = len(trainer.samples), trainer.config.train.eval_batch_size
    dim = backbone.out_dim
    fit = max(2, BANK_BYTES // max(1, 4 * n * dim) // 2 * 2)
    n_views = max(2, min(n_views, fit) // 2 * 2)
    clean = torch.empty(n, dim, device=trainer.device)
    views = torch.empty(n_views, n, dim, device=trainer.device)
    for start in progress_iter(range(0, n, batch), f"suggest-k: embedding {n_views} views", progress):
        rows = trainer.samples[start: start + batch].to(trainer.device)
        x = trainer.augment.eval_view(rows)
        if trainer.use_channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with trainer.autocast():
            clean[start: start + len(rows)] = F.normalize(backbone(x).float(), dim=1)
            for v in range(0, n_views, 2):
                view_a, view_b = trainer.make_views(rows)
                views[v, start: start + len(rows)] = F.normalize(backbone(view_a).float(), dim=1)
                views[v + 1, start: start + len(rows)] = F.normalize(backbone(view_b).float(), dim=1)
    backbone.train()
    return FeatureBank(clean, views)


class MultiKHeads(nn.Module):
    """``replicas`` cluster heads for every K in ``ks``, on features of dimension ``dim``."""

    def __init__(self, dim: int, ks: list[int], replicas: int, hidden: int | None):
        super().__init__()
        self.ks = list(ks)
        self.heads = nn.ModuleList(ClusterHeads(dim, k, hidden, replicas) for k in self.ks)

    def forward(self, h: torch.Tensor) -> list[torch.Tensor]:
        """Per K the (N, replicas, K) assignments."""
        return [head(h) for head in self.heads]

    def loss(self, h_a: torch.Tensor, h_b: torch.Tensor, options: CCOptions) -> torch.Tensor:
        """The mean over heads of CC's cluster loss (spec 1.2) for each head's K."""
        losses = []
        for c_a, c_b in zip(self(h_a), self(h_b)):
            c_a, c_b = c_a.transpose(0, 1), c_b.transpose(0, 1)  # (replicas, N, K)
            entropy = marginal_entropy_penalty(c_a) + marginal_entropy_penalty(c_b)
            losses.append((cluster_contrast(c_a, c_b, options.tau_cluster) + options.entropy_weight * entropy).mean())
        return torch.stack(losses).mean()


def train_heads(heads: MultiKHeads, bank: FeatureBank, options: CCOptions, batch_size: int, max_epochs: int,
                deadline: float | None, seed: int, progress: bool = True) -> int:
    """Train ``heads`` on a random pair of the bank's views per sample (Adam, lr 1e-3) for ``max_epochs`` or until
    ``deadline`` (``time.monotonic()``), at least one epoch; the epochs run."""
    heads.to(bank.views.device).train()
    optimizer = torch.optim.Adam(heads.parameters(), lr=1e-3)
    generator = torch.Generator(device=bank.views.device).manual_seed(seed)
    n_views, n, _ = bank.views.shape
    batch_size = min(batch_size, n)
    epochs = 0
    for epochs in progress_iter(range(1, max_epochs + 1), "suggest-k: training the heads", progress):
        order = torch.randperm(n, generator=generator, device=generator.device)
        for start in range(0, n - batch_size + 1, batch_size):
            rows = order[start: start + batch_size]
            first = torch.randint(n_views, (len(rows),), generator=generator, device=generator.device)
            second = (first + torch.randint(1, n_views, (len(rows),), generator=generator,
                                            device=generator.device)) % n_views
            h_a, h_b = bank.views[first, rows], bank.views[second, rows]
            loss = heads.loss(h_a, h_b, options)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if deadline is not None and time.monotonic() >= deadline:
            break
    heads.eval()
    return epochs
