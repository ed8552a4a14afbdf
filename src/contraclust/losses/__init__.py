"""Loss functions: pure functions of tensors, one family per file."""
from contraclust.losses.cluster import cluster_contrast, marginal_entropy_penalty
from contraclust.losses.instance import nt_xent

__all__ = ["cluster_contrast", "marginal_entropy_penalty", "nt_xent"]
