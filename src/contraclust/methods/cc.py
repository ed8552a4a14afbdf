"""CC: Contrastive Clustering (Li et al., AAAI 2021), spec ``cc_c3_tcl.md`` section 1."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from contraclust.losses import cluster_contrast, marginal_entropy_penalty, nt_xent
from contraclust.methods.base import ClusteringMethod, MethodOptions
from contraclust.models import ClusterHead, InstanceHead


@dataclass
class CCOptions(MethodOptions):
    """CC's loss settings: tau_I = 0.5, tau_C = 1.0, entropy weight 1 (official code)."""

    tau_instance: float = 0.5
    tau_cluster: float = 1.0
    entropy_weight: float = 1.0


class CC(ClusteringMethod):
    """Instance head (rows, NT-Xent) and cluster head (columns, cosine contrast + entropy).

    L = L_ins + L_clu with L_clu = contrast over columns + sum over views (log K - H(p_view))
    (spec 1.2; the log K constant is kept as in the official code). Read-out: argmax of the cluster
    head on the un-augmented image (spec 1.6).
    """

    name = "cc"
    summary = "Contrastive Clustering (Li et al. 2021): instance + cluster contrast with an entropy term"
    Options = CCOptions

    def __init__(self, backbone, n_clusters, options: CCOptions, model_cfg):
        super().__init__(backbone, n_clusters, options, model_cfg)
        dim = backbone.out_dim
        self.instance_head = InstanceHead(dim, model_cfg.feature_dim, model_cfg.head_hidden)
        self.cluster_head = ClusterHead(dim, n_clusters, model_cfg.head_hidden)

    def forward(self, view_a, view_b):
        h_a, h_b = self.encode_pair(view_a, view_b)
        return {
            "z_a": self.instance_head(h_a), "z_b": self.instance_head(h_b),
            "c_a": self.cluster_head(h_a), "c_b": self.cluster_head(h_b),
        }

    def loss(self, outputs):
        opts = self.options
        instance = nt_xent(outputs["z_a"], outputs["z_b"], opts.tau_instance)
        contrast = cluster_contrast(outputs["c_a"], outputs["c_b"], opts.tau_cluster)
        entropy = marginal_entropy_penalty(outputs["c_a"]) + marginal_entropy_penalty(outputs["c_b"])
        cluster = contrast + opts.entropy_weight * entropy
        return instance + cluster, {"instance": instance, "cluster": contrast, "entropy": entropy}

    def cluster_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return self.cluster_head(self.backbone(x))
