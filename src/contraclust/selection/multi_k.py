"""CC with cluster heads of several K on one backbone (PICA's and SCAN's over-clustering), for suggest-k.

Every head gets CC's cluster loss (column contrast + entropy, spec 1.2) for its own K, and the backbone
gets the instance loss plus the mean of the heads' cluster losses. Each K has ``replicas`` heads started
apart, so that how much two heads of one K agree measures how stable that K's partition is.
"""
from __future__ import annotations

import torch
from torch import nn

from contraclust.losses import cluster_contrast, marginal_entropy_penalty, nt_xent
from contraclust.methods.base import ClusteringMethod
from contraclust.methods.cc import CCOptions
from contraclust.models import ClusterHeads, InstanceHead


class MultiKCC(ClusteringMethod):
    name = "cc-multi-k"
    summary = "CC with cluster heads of several K on one backbone (for suggest-k)"
    Options = CCOptions

    def __init__(self, backbone, ks: list[int], replicas: int, options: CCOptions, model_cfg):
        super().__init__(backbone, max(ks), options, model_cfg)
        self.ks = list(ks)
        dim = backbone.out_dim
        self.instance_head = InstanceHead(dim, model_cfg.feature_dim, model_cfg.head_hidden)
        self.heads = nn.ModuleList(ClusterHeads(dim, k, model_cfg.head_hidden, replicas) for k in self.ks)

    def forward(self, view_a, view_b):
        h_a, h_b = self.encode_pair(view_a, view_b)
        outputs = {"z_a": self.instance_head(h_a), "z_b": self.instance_head(h_b)}
        for i, head in enumerate(self.heads):  # (N, replicas, K) each
            outputs[f"c_a{i}"], outputs[f"c_b{i}"] = head(h_a), head(h_b)
        return outputs

    def loss(self, outputs):
        opts = self.options
        instance = nt_xent(outputs["z_a"], outputs["z_b"], opts.tau_instance)
        clusters = []
        for i in range(len(self.ks)):
            c_a, c_b = outputs[f"c_a{i}"].transpose(0, 1), outputs[f"c_b{i}"].transpose(0, 1)
            entropy = marginal_entropy_penalty(c_a) + marginal_entropy_penalty(c_b)
            clusters.append((cluster_contrast(c_a, c_b, opts.tau_cluster) + opts.entropy_weight * entropy).mean())
        cluster = torch.stack(clusters).mean()
        return instance + cluster, {"instance": instance, "cluster": cluster}

    def head_probabilities(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Per K the (N, replicas, K) assignments, and the (N, D) L2-normalised backbone features."""
        h = self.backbone(x)
        return [head(h).float() for head in self.heads], torch.nn.functional.normalize(h.float(), dim=1)

    def cluster_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads[-1](self.backbone(x))[:, 0]
