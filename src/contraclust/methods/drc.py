"""DRC: Deep Robust Clustering by Contrastive Learning (Zhong et al. 2020), spec ``drc_clc.md``.

No official code exists; every UNVERIFIED reading of the spec is an option here, default first:
- ``similarity``: ``cosine`` (raw dot products of unbounded logits / 0.5 overflow) or ``dot`` (the port).
- ``af_negatives``: ``cross_view`` (N-1 negatives from the other view, the port) or ``nt_xent`` (2N-2).
- ``af_symmetric``: False (one direction, original -> augmented, the port) or True (both directions).
- ``regulariser``: ``squared`` (form A, (1/N) sum_k (sum_i p_ik)^2 on the first view, the port) with
  weight 0.5, or ``entropy`` (form B, log K - H(mean p) on the first view, GCC uses weight 2.0).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from contraclust.losses import (
    assignment_feature_loss, assignment_probability_loss, entropy_regulariser, squared_mass_regulariser,
)
from contraclust.checks import choice, ranged
from contraclust.methods.base import ClusteringMethod, MethodOptions


@dataclass
class DRCOptions(MethodOptions):
    tau_af: float = ranged(0.5, gt=0)
    tau_ap: float = ranged(1.0, gt=0)
    similarity: str = choice("cosine", ("cosine", "dot"))
    af_negatives: str = choice("cross_view", ("cross_view", "nt_xent"))
    af_symmetric: bool = False
    regulariser: str = choice("squared", ("squared", "entropy"))
    regulariser_weight: float = ranged(0.5, ge=0)


class DRC(ClusteringMethod):
    """One fully connected layer maps the representation to K logits (the assignment features z);
    their softmax is the assignment probability p. L = L_AF(z) + L_AP(p columns) + lambda * L_CR(p).
    Read-out: argmax of p on the un-augmented image."""

    name = "drc"
    Options = DRCOptions

    def __init__(self, backbone, n_clusters, options: DRCOptions, model_cfg):
        super().__init__(backbone, n_clusters, options, model_cfg)
        self.assignment = nn.Linear(backbone.out_dim, n_clusters)

    def forward(self, view_a, view_b):
        h_a, h_b = self.encode_pair(view_a, view_b)
        return {"logits_a": self.assignment(h_a), "logits_b": self.assignment(h_b)}

    def loss(self, outputs):
        opts = self.options
        logits_a, logits_b = outputs["logits_a"], outputs["logits_b"]
        probs_a, probs_b = torch.softmax(logits_a, dim=1), torch.softmax(logits_b, dim=1)
        feature = assignment_feature_loss(logits_a, logits_b, opts.tau_af, opts.similarity, opts.af_negatives,
                                          opts.af_symmetric)
        probability = assignment_probability_loss(probs_a, probs_b, opts.tau_ap, opts.similarity)
        prior = self.prior.target()  # None: uniform, DRC's own regulariser
        regulariser = (squared_mass_regulariser(probs_a, prior) if opts.regulariser == "squared"
                       else entropy_regulariser(probs_a, prior))
        self.prior.observe(probs_a)
        total = feature + probability + opts.regulariser_weight * self.prior.weight * regulariser
        return total, {"assignment_feature": feature, "assignment_probability": probability,
                       "regulariser": regulariser}

    def cluster_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.assignment(self.backbone(x)).float(), dim=1)
