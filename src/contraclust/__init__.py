"""contraclust: contrastive deep clustering (CC, C3, DRC, CLC) on one small PyTorch core."""
from contraclust.api import ContrastiveClustering
from contraclust.config import RunConfig
from contraclust.data import FeatureSet, ImageSet, load_data
from contraclust.metrics import cluster_accuracy, evaluate_clustering
from contraclust.presets import build_config, get_preset

__version__ = "0.1.0"
__all__ = [
    "ContrastiveClustering", "FeatureSet", "ImageSet", "RunConfig", "build_config", "cluster_accuracy",
    "evaluate_clustering", "get_preset", "load_data",
]
