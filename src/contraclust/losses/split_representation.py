"""CLC's one contrastive loss over a split representation (spec ``drc_clc.md``, reconstruction)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from contraclust.losses.instance import nt_xent


def split_representation(categorical: torch.Tensor, instance: torch.Tensor, alpha: float = 1.0, beta: float = 1.0,
                         normalise: bool = False) -> torch.Tensor:
    """z = [alpha * c ; beta * u] with u the unit-norm instance part; optionally L2-normalised as a whole."""
    z = torch.cat([alpha * categorical, beta * F.normalize(instance, dim=1)], dim=1)
    return F.normalize(z, dim=1) if normalise else z


def split_contrastive_loss(categorical_a: torch.Tensor, instance_a: torch.Tensor, categorical_b: torch.Tensor,
                           instance_b: torch.Tensor, temperature: float = 0.5, alpha: float = 1.0, beta: float = 1.0,
                           normalise: bool = False) -> torch.Tensor:
    """NT-Xent (2N-2 negatives) over z = [alpha c ; beta u].

    Because exp(z_i.z_j/t) = exp(alpha^2 c_i.c_j/t) * exp(beta^2 u_i.u_j/t), this is an instance
    InfoNCE on u in which each negative j carries the weight exp(alpha^2 c_i.c_j/t): negatives that
    the model puts in the anchor's cluster (hard negatives) weigh the most.
    """
    z_a = split_representation(categorical_a, instance_a, alpha, beta, normalise)
    z_b = split_representation(categorical_b, instance_b, alpha, beta, normalise)
    return nt_xent(z_a, z_b, temperature)
