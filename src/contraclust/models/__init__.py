"""Backbones and projection heads."""
from contraclust.models.backbones import BACKBONES, MLP, ResNet, SmallCNN, build_backbone
from contraclust.models.heads import ClusterHead, InstanceHead

__all__ = ["BACKBONES", "MLP", "ClusterHead", "InstanceHead", "ResNet", "SmallCNN", "build_backbone"]
