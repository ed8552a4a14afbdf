"""The method registry. A new method is one file with a ``ClusteringMethod`` subclass and one line in
``REGISTRY``: where its class lives and the one-line summary that ``--help`` lists.

The registry is read without importing torch, so that ``contraclust --help`` and a mistyped argument
answer at once; the classes (``METHODS``, ``get_method``, ``build_method``...) are imported on first use,
from ``methods/lookup.py``.
"""
from __future__ import annotations

REGISTRY: dict[str, tuple[str, str]] = {
    "cc": ("contraclust.methods.cc:CC",
           "Contrastive Clustering (Li et al. 2021): instance + cluster contrast with an entropy term"),
    "c3": ("contraclust.methods.c3:C3",
           "C3 (Sadeghi et al. 2022): CC fine-tuned with cross-instance positives above a similarity zeta"),
    "drc": ("contraclust.methods.drc:DRC",
            "DRC (Zhong et al. 2020): contrast on assignment features and probabilities + cluster regulariser"),
    "clc": ("contraclust.methods.clc:CLC",
            "CLC (Ding et al. 2023): one contrastive loss over a balanced categorical part and an instance part"),
}

METHOD_NAMES = list(REGISTRY)
SUMMARIES = {name: summary for name, (_, summary) in REGISTRY.items()}
_LOADED = ("METHODS", "ClusteringMethod", "MethodOptions", "build_method", "get_method", "method_options_class")


def __getattr__(name: str):
    if name in _LOADED:
        from contraclust.methods import lookup

        return getattr(lookup, name)
    raise AttributeError(f"module 'contraclust.methods' has no attribute {name!r}")


__all__ = ["METHOD_NAMES", "REGISTRY", "SUMMARIES", *_LOADED]
