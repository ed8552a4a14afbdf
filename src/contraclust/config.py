"""Typed run configuration. The CLI and the Python API build the same :class:`RunConfig`.

A run's resolved config is written to ``config.json``; :func:`config_from_dict` reads it back.
Overrides use dotted paths (``train.epochs=50``, ``augment.blur_p=0.5``, ``method.tau_instance=0.3``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from contraclust.errors import ConfigError


@dataclass
class AugmentConfig:
    """Two-view augmentation, applied on the device to a whole batch (see ``contraclust.augment``).

    The defaults are CC's CIFAR pipeline (spec section 1.3): RandomResizedCrop scale (0.08, 1),
    flip 0.5, colour jitter (0.8s, 0.8s, 0.8s, 0.2s) with p=0.8, grayscale 0.2, no blur.
    """

    size: int = 224
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_strength: float = 0.5
    jitter_p: float = 0.8
    hue: bool = True
    saturation_factor: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_kernel: int = 23
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    rotate_degrees: float = 0.0
    shear_degrees: float = 0.0
    translate: float = 0.0
    jitter_order: str = "random"
    noise_std: float = 0.0
    feature_dropout: float = 0.0


@dataclass
class ModelConfig:
    """Backbone and head sizes. ``backbone``: resnet18/34/50, small_cnn, mlp.

    ``stem``: ``imagenet`` (7x7/2 conv + max-pool, CC's setting) or ``cifar`` (3x3/1 conv, no pool).
    """

    backbone: str = "resnet34"
    stem: str = "imagenet"
    feature_dim: int = 128
    head_hidden: int | None = None
    width: int = 64
    mlp_hidden: tuple[int, ...] = (512, 512)


@dataclass
class OptimConfig:
    """Optimiser: CC's paper default is Adam, lr 3e-4, no weight decay, no schedule."""

    name: str = "adam"
    lr: float = 3e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.0


@dataclass
class TrainConfig:
    """Loop settings. ``checkpoint_every``/``eval_every`` count epochs; ``log_every`` counts steps.

    ``budget_seconds``: 0 runs ``epochs``; above 0 the run, from its start to its files, is sized to
    end within that many seconds (measured speed; ``epochs`` becomes the most it may run; see
    ``training/budget.py``). ``precision``: auto (bf16 autocast on CUDA, and on CPUs with native bf16
    kernels; else fp32), fp32 or bf16. ``channels_last`` applies to images on every device.
    ``compile`` and ``compile_augment`` apply ``torch.compile`` on CUDA only. ``batch_size`` is the
    global batch, split over torchrun processes."""

    epochs: int = 1000
    budget_seconds: float = 0.0
    batch_size: int = 256
    drop_last: bool = True
    seed: int = 42
    checkpoint_every: int = 10
    eval_every: int = 1
    eval_batch_size: int = 500
    log_every: int = 20
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    compile_augment: bool = False
    sync_batchnorm: bool = False
    progress: bool = True


@dataclass
class RunConfig:
    """Everything that defines a run: which method, how many clusters, and each part's settings.
    ``recipe``: for the ``auto`` preset, the data and device it was chosen for and each choice's reason."""

    method: str = "cc"
    n_clusters: int = 10
    data: str | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method_options: Any = None
    preset: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method_options is None or isinstance(self.method_options, dict):
            cls = method_options_class(self.method)
            self.method_options = _build(cls, self.method_options or {}, "method")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def validate(self) -> None:
        if self.n_clusters < 2:
            raise ConfigError(f"the number of clusters must be at least 2, got {self.n_clusters}")
        if self.train.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.train.epochs}")
        if not (self.train.budget_seconds >= 0 and math.isfinite(self.train.budget_seconds)):
            raise ConfigError(f"train.budget_seconds must be 0 (no budget) or a positive number of seconds, "
                              f"got {self.train.budget_seconds}")
        if self.train.batch_size < 2:
            raise ConfigError(f"batch size must be at least 2, got {self.train.batch_size}")
        if self.train.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"precision must be auto, fp32 or bf16, got {self.train.precision!r}")
        low, high = self.augment.crop_scale
        if not 0 < low <= high <= 1:
            raise ConfigError(f"augment.crop_scale must satisfy 0 < low <= high <= 1, got {self.augment.crop_scale}")
        if self.augment.jitter_order not in ("random", "fixed"):
            raise ConfigError("augment.jitter_order must be random or fixed")


# Each method's options dataclass, by method name. ``contraclust.methods`` fills it as it registers the
# methods (importing any part of the package imports it), so this module never imports the methods,
# which import this one for ModelConfig.
_METHOD_OPTIONS: dict[str, type] = {}


def register_method_options(name: str, options_class: type) -> None:
    _METHOD_OPTIONS[name] = options_class


def method_options_class(name: str) -> type:
    if name not in _METHOD_OPTIONS:
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(_METHOD_OPTIONS)}")
    return _METHOD_OPTIONS[name]


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from its ``to_dict`` form (e.g. a run's config.json)."""
    return _build(RunConfig, data, "")


def apply_overrides(config: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``section.field=value`` strings; values are parsed as the field's declared type."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.field=value, e.g. train.epochs=50")
        path, raw = item.split("=", 1)
        target: Any = config
        parts = path.strip().split(".")
        for part in parts[:-1]:
            part = "method_options" if part == "method" else part
            if not dataclasses.is_dataclass(target) or not hasattr(target, part):
                raise ConfigError(f"unknown config section {part!r} in {item!r}; sections: {_names(config)}")
            target = getattr(target, part)
        name = parts[-1]
        if not dataclasses.is_dataclass(target) or name not in _names(target):
            raise ConfigError(f"unknown config field {path!r}; fields here: {_names(target)}")
        hints = typing.get_type_hints(type(target))
        setattr(target, name, _parse(raw.strip(), hints[name], path))
    return config


def _names(obj: Any) -> list[str]:
    return [f.name for f in fields(obj)] if dataclasses.is_dataclass(obj) else []


def _parse(raw: str, hint: Any, path: str) -> Any:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return _coerce(value, hint, path)


def _coerce(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or value == "none":
            if type(None) in args:
                return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError:
                continue
        raise ConfigError(f"{path}: cannot use {value!r}")
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list such as 0.2,1.0, got {value!r}")
        item_type = args[0] if args else float
        return tuple(_coerce(v, item_type, path) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if hint in (int, float):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: expected a number, got {value!r}") from None
        if hint is int:
            if number != int(number):
                raise ConfigError(f"{path}: expected a whole number, got {value!r}")
            return int(number)
        return number
    if hint is str:
        return str(value)
    return value


def _build(cls: type, data: dict[str, Any], path: str) -> Any:
    """Instantiate dataclass ``cls`` from a dict, recursing into nested dataclasses and coercing types."""
    if dataclasses.is_dataclass(data):
        return data
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown config field(s) {sorted(unknown)} in {path or 'config'}; known: {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        sub = f"{path}.{name}" if path else name
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            kwargs[name] = _build(hint, value, sub)
        elif name == "method_options":
            kwargs[name] = value
        else:
            kwargs[name] = _coerce(value, hint, sub) if value is not None else None
    return cls(**kwargs)
