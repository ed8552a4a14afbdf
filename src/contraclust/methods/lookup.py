"""The method classes of ``REGISTRY`` (``methods/__init__.py``), imported, and how a run builds one."""
from __future__ import annotations

from importlib import import_module

from contraclust.config import register_method_options
from contraclust.errors import ConfigError
from contraclust.methods import REGISTRY
from contraclust.methods.base import ClusteringMethod, MethodOptions
from contraclust.models import build_backbone


def _load(where: str, summary: str) -> type[ClusteringMethod]:
    module, _, name = where.partition(":")
    cls = getattr(import_module(module), name)
    cls.summary = summary
    return cls


METHODS: dict[str, type[ClusteringMethod]] = {name: _load(*entry) for name, entry in REGISTRY.items()}

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
