"""The method registry. A new method is one file with a ``ClusteringMethod`` subclass and one line here."""
from __future__ import annotations

from contraclust.config import register_method_options
from contraclust.errors import ConfigError
from contraclust.methods.base import ClusteringMethod, MethodOptions
from contraclust.methods.c3 import C3
from contraclust.methods.cc import CC
from contraclust.methods.clc import CLC
from contraclust.methods.drc import DRC
from contraclust.models import build_backbone

METHODS: dict[str, type[ClusteringMethod]] = {
    CC.name: CC,
    C3.name: C3,
    DRC.name: DRC,
    CLC.name: CLC,
}


for _name, _method in METHODS.items():
    register_method_options(_name, _method.Options)


def get_method(name: str) -> type[ClusteringMethod]:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]


def method_options_class(name: str) -> type[MethodOptions]:
    return get_method(name).Options


def build_method(config, sample_shape: tuple[int, ...]) -> ClusteringMethod:
    """``config.method`` (a RunConfig's) with its backbone for samples of ``sample_shape``."""
    backbone = build_backbone(config.model, sample_shape)
    return get_method(config.method)(backbone, config.n_clusters, config.method_options, config.model)


__all__ = ["METHODS", "ClusteringMethod", "MethodOptions", "build_method", "get_method", "method_options_class"]
