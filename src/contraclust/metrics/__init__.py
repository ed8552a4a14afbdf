"""Clustering metrics."""
from contraclust.metrics.clustering import cluster_accuracy, degenerate_partition, evaluate_clustering

__all__ = ["cluster_accuracy", "degenerate_partition", "evaluate_clustering"]
