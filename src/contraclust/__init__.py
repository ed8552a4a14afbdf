"""contraclust: contrastive deep clustering (CC, C3, DRC, CLC) on one small PyTorch core.

The public names are imported on first use, so that the command line (``python -m contraclust``) starts
without scikit-learn and the rest of the API behind them.
"""
from importlib import import_module

__version__ = "0.1.0"
_PUBLIC = {
    "ContrastiveClustering": "contraclust.api", "RunConfig": "contraclust.config", "FeatureSet": "contraclust.data",
    "ImageSet": "contraclust.data", "load_data": "contraclust.data", "cluster_accuracy": "contraclust.metrics",
    "evaluate_clustering": "contraclust.metrics", "build_config": "contraclust.presets",
    "get_preset": "contraclust.presets",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'contraclust' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
