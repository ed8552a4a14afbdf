"""CC: Contrastive Clustering (Li et al., AAAI 2021), spec ``cc_c3_tcl.md`` section 1."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from contraclust.checks import ranged
from contraclust.losses import cluster_contrast, marginal_entropy_penalty, nt_xent
from contraclust.methods.base import ClusteringMethod, MethodOptions
from contraclust.models import ClusterHead, ClusterHeads, InstanceHead


@dataclass
class CCOptions(MethodOptions):
    """CC's loss settings: tau_I = 0.5, tau_C = 1.0, entropy weight 1 (official code).

    ``cluster_heads`` (ours, not CC's; SCAN's device): H cluster heads on the one backbone, each with
    its own cluster loss (the backbone gets their mean); the head whose cluster loss has the lowest
    running mean reads out. CC's cluster head settles on a partition early, while the features are
    still poor, and sometimes on a poor one (a catch-all cluster, two digits merged); heads started
    apart settle apart, and the lowest loss picks a good one. 1 (default) is CC as published."""

    tau_instance: float = ranged(0.5, gt=0)
    tau_cluster: float = ranged(1.0, gt=0)
    entropy_weight: float = ranged(1.0, ge=0)
    cluster_heads: int = ranged(1, ge=1)


class CC(ClusteringMethod):
    """Instance head (rows, NT-Xent) and cluster head (columns, cosine contrast + entropy).

    L = L_ins + L_clu with L_clu = contrast over columns + sum over views (log K - H(p_view))
    (spec 1.2; the log K constant is kept as in the official code); with ``cluster_prior`` other than
    uniform the entropy term is KL(p_view || prior) or off (``methods/prior.py``). Read-out: argmax of the cluster
    head on the un-augmented image (spec 1.6); with several heads, of the selected one.
    """

    name = "cc"
    Options = CCOptions
    has_instance_loss = True
    LOSS_MOMENTUM = 0.99  # running mean of each head's cluster loss, for choosing the read-out head

    def __init__(self, backbone, n_clusters, options: CCOptions, model_cfg):
        super().__init__(backbone, n_clusters, options, model_cfg)
        dim, heads = backbone.out_dim, options.cluster_heads
        self.instance_head = InstanceHead(dim, model_cfg.feature_dim, model_cfg.head_hidden)
        self.cluster_head = (ClusterHead(dim, n_clusters, model_cfg.head_hidden) if heads == 1
                             else ClusterHeads(dim, n_clusters, model_cfg.head_hidden, heads))
        if heads > 1:
            self.register_buffer("head_losses", torch.zeros(heads))
            self.register_buffer("head_updates", torch.zeros((), dtype=torch.long))

    @property
    def selected_head(self) -> int:
        """The head that reads out: the one whose cluster loss has the lowest running mean."""
        return int(self.head_losses.argmin()) if self.options.cluster_heads > 1 else 0

    def forward(self, view_a, view_b):
        h_a, h_b = self.encode_pair(view_a, view_b)
        return {
            "z_a": self.instance_head(h_a), "z_b": self.instance_head(h_b),
            "c_a": self.cluster_head(h_a), "c_b": self.cluster_head(h_b),  # (N, K), or (N, H, K) for H heads
        }

    def loss(self, outputs):
        opts = self.options
        instance = nt_xent(outputs["z_a"], outputs["z_b"], opts.tau_instance)
        c_a, c_b = outputs["c_a"], outputs["c_b"]
        if c_a.ndim == 3:  # H heads: one cluster loss each, (H, N, K)
            c_a, c_b = c_a.transpose(0, 1), c_b.transpose(0, 1)
        contrast = cluster_contrast(c_a, c_b, opts.tau_cluster)
        prior = self.prior.target()  # None: uniform, CC's own term
        entropy = marginal_entropy_penalty(c_a, prior) + marginal_entropy_penalty(c_b, prior)
        self.prior.observe(torch.cat([c_a, c_b], dim=-2))
        cluster = contrast + opts.entropy_weight * self.prior.weight * entropy
        if cluster.ndim and self.training:
            self._track_head_losses(cluster.detach())
        return instance + cluster.mean(), {"instance": instance, "cluster": contrast.mean(), "entropy": entropy.mean()}

    def instance_loss(self, outputs):
        """L_ins alone: the first of CC's two passes per STL-10 epoch, over the unlabelled images (spec
        1.5, train_STL10.py). The cluster outputs enter with weight 0, so that every parameter takes part
        in the step as DDP expects."""
        instance = nt_xent(outputs["z_a"], outputs["z_b"], self.options.tau_instance)
        unused = 0.0 * (outputs["c_a"].sum() + outputs["c_b"].sum())
        return instance + unused, {"instance": instance}

    @torch.no_grad()
    def _track_head_losses(self, losses: torch.Tensor) -> None:
        """Running mean of each head's cluster loss (the first update takes the loss as it is); tensor
        arithmetic only, so the step reads nothing back to the host."""
        momentum = torch.where(self.head_updates > 0, self.LOSS_MOMENTUM, 0.0)
        self.head_losses.mul_(momentum).add_((1 - momentum) * losses)
        self.head_updates.add_(1)

    def cluster_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = self.cluster_head(self.backbone(x))
        if probabilities.ndim == 2:
            return probabilities
        return probabilities.index_select(1, self.head_losses.argmin().view(1)).squeeze(1)  # no host read
