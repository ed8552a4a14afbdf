"""Loss functions: pure functions of tensors, one family per file."""
from contraclust.losses.assignment import (
    assignment_feature_loss,
    assignment_probability_loss,
    cross_view_info_nce,
    entropy_regulariser,
    squared_mass_regulariser,
)
from contraclust.losses.cluster import cluster_contrast, marginal_entropy_penalty
from contraclust.losses.cross_instance import cross_instance_loss
from contraclust.losses.instance import nt_xent
from contraclust.losses.self_labelling import self_labelling_loss
from contraclust.losses.sinkhorn import sinkhorn, sinkhorn_readout
from contraclust.losses.split_representation import split_contrastive_loss, split_representation

__all__ = [
    "assignment_feature_loss", "assignment_probability_loss", "cluster_contrast", "cross_instance_loss",
    "cross_view_info_nce", "entropy_regulariser", "marginal_entropy_penalty", "nt_xent", "self_labelling_loss", "sinkhorn",
    "sinkhorn_readout",
    "split_contrastive_loss", "split_representation", "squared_mass_regulariser",
]
