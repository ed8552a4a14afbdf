"""Choosing the number of clusters: one run with cluster heads of many K, label-free signals per K."""
from contraclust.selection.suggest import SuggestKResult, parse_k_range, suggest_k

__all__ = ["SuggestKResult", "parse_k_range", "suggest_k"]
