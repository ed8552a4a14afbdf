"""Clustering metrics."""
from contraclust.metrics.clustering import cluster_accuracy, evaluate_clustering

__all__ = ["cluster_accuracy", "evaluate_clustering"]
