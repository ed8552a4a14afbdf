"""What every method shares: a backbone, a two-view encoder, and a read-out of cluster labels.

A method is a small ``nn.Module``: which heads it owns (``__init__``), what it computes per view
(``forward``: a dict of per-sample tensors, run under autocast), which losses it sums with what
weights (``loss``: run in fp32 on the *global* batch, since the trainer gathers every output across
processes first), and how it reads out cluster probabilities (``cluster_probabilities``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from contraclust.checks import check_fields, choice, ranged
from contraclust.config import ModelConfig
from contraclust.errors import ConfigError
from contraclust.methods.prior import ClusterPrior


@dataclass
class MethodOptions:
    """Options shared by every method. ``views_forward``: ``separate`` passes each view through the
    backbone on its own (per-view BatchNorm statistics, as CC's official code); ``concat`` passes
    both in one call (one set of statistics, fewer kernel launches). ``cluster_prior``,
    ``prior_weight``, ``prior_floor``, ``prior_momentum``: the prior of the balance term
    (``methods/prior.py``; ``uniform`` with weight 1 is every paper's)."""

    views_forward: str = choice("separate", ("separate", "concat"))
    cluster_prior: str = choice("uniform", ("uniform", "none", "estimated"))
    prior_weight: float = ranged(1.0, ge=0)
    prior_floor: float = ranged(0.1, ge=0, le=1)
    prior_momentum: float = ranged(0.99, ge=0, lt=1)


class ClusteringMethod(nn.Module):
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Options: ClassVar[type] = MethodOptions
    has_instance_loss: ClassVar[bool] = False  # ``instance_loss`` exists (extra unlabelled images can train it)

    def __init__(self, backbone: nn.Module, n_clusters: int, options: MethodOptions, model_cfg: ModelConfig):
        super().__init__()
        check_fields(options, "method")
        self.backbone = backbone
        self.n_clusters = n_clusters
        self.options = options
        self.model_cfg = model_cfg
        self.prior = ClusterPrior(n_clusters, options.cluster_prior, options.prior_weight, options.prior_floor,
                                  options.prior_momentum)

    def encode_pair(self, view_a: torch.Tensor, view_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.options.views_forward == "concat":
            return self.backbone(torch.cat([view_a, view_b])).chunk(2)
        return self.backbone(view_a), self.backbone(view_b)

    def forward(self, view_a: torch.Tensor, view_b: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def loss(self, outputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its named parts, from ``forward``'s outputs over the whole (global) batch."""
        raise NotImplementedError

    def instance_loss(self, outputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The instance-level loss alone, for passes over images that are not clustered (CC's STL-10
        schedule trains on the 100,000 unlabelled images this way); methods with one set
        ``has_instance_loss``."""
        raise ConfigError(f"{self.name} has no instance-level loss of its own to train extra unlabelled images with")

    def cluster_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K) soft assignment of un-augmented inputs (call under ``eval()``/``no_grad``)."""
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) representation of un-augmented inputs: the backbone's features, L2-normalised (what
        ``transform`` returns and the report maps in 2-D). Call under ``eval()``/``no_grad``."""
        return F.normalize(self.backbone(x).float(), dim=1)

    def readout(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Final (N, K) assignment of a whole evaluated set from its per-sample probabilities; the
        label is the argmax of each row. Most methods read out per sample (identity here)."""
        return probabilities

    def load_initial_state(self, state: dict[str, torch.Tensor]) -> tuple[int, int]:
        """Start from another run's weights (e.g. C3 from CC): load the tensors that match by name and
        shape; returns (loaded, this model's total). Refused unless every backbone tensor matches:
        weights of another backbone would leave it silently untrained."""
        own = self.state_dict()
        matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        backbone = [k for k in own if k.startswith("backbone.")]
        missing = [k for k in backbone if k not in matched]
        if missing:
            raise ConfigError(f"the initial weights match {len(backbone) - len(missing)} of this backbone's "
                              f"{len(backbone)} tensors (e.g. not {missing[0]}): they come from another "
                              f"backbone or input shape; refusing to start from them")
        self.load_state_dict(matched, strict=False)
        return len(matched), len(own)
