"""Backbones and projection heads."""
from contraclust.models.backbones import BACKBONES, MLP, ResNet, SmallCNN, build_backbone
from contraclust.models.heads import ClusterHead, ClusterHeads, InstanceHead

__all__ = ["BACKBONES", "MLP", "ClusterHead", "ClusterHeads", "InstanceHead", "ResNet", "SmallCNN", "build_backbone"]
