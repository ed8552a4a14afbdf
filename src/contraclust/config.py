"""Typed run configuration. The CLI and the Python API build the same :class:`RunConfig`.

A run's resolved config is written to ``config.json``; :func:`config_from_dict` reads it back.
Overrides use dotted paths (``train.epochs=50``, ``augment.blur_p=0.5``, ``method.tau_instance=0.3``).
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from contraclust.checks import check_fields, choice, probability, ranged
from contraclust.errors import ConfigError, ContraclustError

# The upper bounds declared below are far above any sensible run and far below what would exhaust a
# machine before a step (a width of a million, images of 50,000 px): absurd values are refused by name.
MAX_SIDE = 1024  # pixels a side: views (augment.size), --image-size and packs


@dataclass
class AugmentConfig:
    """Two-view augmentation, applied on the device to a whole batch (see ``contraclust.augment``).

    The defaults are CC's CIFAR pipeline (spec section 1.3): RandomResizedCrop scale (0.08, 1),
    flip 0.5, colour jitter (0.8s, 0.8s, 0.8s, 0.2s) with p=0.8, grayscale 0.2, no blur.
    Feature vectors: Gaussian noise of ``noise_std`` times each feature's spread, ``feature_dropout``,
    and with ``neighbours`` = k > 0 nearest-neighbour positives (SCAN, TEMI): the second view is, with
    probability ``neighbour_p``, one of the sample's k nearest neighbours (cosine, found once). Images
    with ``neighbours`` > 0 have theirs mined from the network's embedding once ``neighbour_start`` of the
    training steps are done, and again every ``neighbour_refresh`` epochs (``training/mined_neighbours.py``).
    """

    size: int = ranged(224, ge=4, le=MAX_SIDE)
    crop_scale: tuple[float, float] = ranged((0.08, 1.0), gt=0, le=1)
    crop_ratio: tuple[float, float] = ranged((3 / 4, 4 / 3), gt=0)
    flip_p: float = probability(0.5)
    jitter_strength: float = ranged(0.5, ge=0)
    jitter_p: float = probability(0.8)
    hue: bool = True
    saturation_factor: float = ranged(0.8, ge=0)
    grayscale_p: float = probability(0.2)
    blur_p: float = probability(0.0)
    blur_kernel: int = ranged(23, ge=1, le=255)
    blur_sigma: tuple[float, float] = ranged((0.1, 2.0), gt=0)
    rotate_degrees: float = ranged(0.0, ge=0, le=180)
    shear_degrees: float = ranged(0.0, ge=0, lt=90)
    translate: float = probability(0.0)
    jitter_order: str = choice("random", ("random", "fixed"))
    noise_std: float = ranged(0.0, ge=0)
    feature_dropout: float = ranged(0.0, ge=0, lt=1)
    neighbours: int = ranged(0, ge=0, le=1000)
    neighbour_p: float = probability(0.5)
    neighbour_start: float = probability(0.5)
    neighbour_refresh: int = ranged(5, ge=1, le=1_000_000)
    strong_ops: int = ranged(0, ge=0, le=8)
    cutout: float = ranged(0.0, ge=0, le=1)


@dataclass
class ModelConfig:
    """Backbone and head sizes. ``backbone``: resnet18/34/50, small_cnn, mlp.

    ``stem``: ``imagenet`` (7x7/2 conv + max-pool, CC's setting) or ``cifar`` (3x3/1 conv, no pool).
    ``input_norm`` (vectors, the MLP): ``standardize`` per feature by the training data (default: tables
    mix units), ``l2`` (embeddings compared by cosine) or ``none``.
    """

    backbone: str = "resnet34"
    stem: str = choice("imagenet", ("imagenet", "cifar"))
    feature_dim: int = ranged(128, ge=1, le=8192)
    head_hidden: int | None = ranged(None, ge=1, le=16384)
    width: int = ranged(64, ge=1, le=512)
    mlp_hidden: tuple[int, ...] = ranged((512, 512), ge=1, le=16384)
    input_norm: str = choice("standardize", ("standardize", "l2", "none"))


@dataclass
class OptimConfig:
    """Optimiser: CC's paper default is Adam, lr 3e-4, no weight decay, no schedule."""

    name: str = choice("adam", ("adam", "adamw", "sgd"))
    lr: float = ranged(3e-4, gt=0)
    weight_decay: float = ranged(0.0, ge=0)
    betas: tuple[float, float] = ranged((0.9, 0.999), ge=0, lt=1)
    momentum: float = ranged(0.9, ge=0, lt=1)
    schedule: str = choice("constant", ("constant", "cosine"))
    warmup_epochs: float = ranged(0.0, ge=0)
    min_lr_ratio: float = probability(0.0)


@dataclass
class TrainConfig:
    """Loop settings. ``checkpoint_every``/``eval_every`` count epochs; ``log_every`` counts steps.

    ``budget_seconds``: 0 runs ``epochs``; above 0 the run, from its start to its files, is sized to
    end within that many seconds (measured speed; ``epochs`` becomes the most it may run; see
    ``training/budget.py``); ``after_seconds`` of it are kept for work after training (``fit`` sets
    it to its estimate of the report's time). ``precision``: auto (bf16 autocast on CUDA, and on CPUs with native bf16
    kernels; else fp32), fp32 or bf16. ``channels_last`` applies to images on every device.
    ``compile`` and ``compile_augment`` apply ``torch.compile`` on CUDA only. ``batch_size`` is the
    global batch, split over torchrun processes. ``data_placement``: ``auto`` keeps the samples resident
    on the device when they fit in half its free memory (or in ``data_memory_limit_mb`` when above 0)
    and streams them from host memory otherwise (``training/streaming.py``); ``resident`` and
    ``streaming`` force a path."""

    epochs: int = ranged(1000, ge=1, le=1_000_000)
    budget_seconds: float = ranged(0.0, ge=0)
    after_seconds: float = ranged(0.0, ge=0)
    batch_size: int = ranged(256, ge=2, le=1_048_576)
    drop_last: bool = True
    seed: int = ranged(42, ge=0, le=2**32 - 1)
    checkpoint_every: int = ranged(10, ge=1, le=1_000_000)
    eval_every: int = ranged(1, ge=0, le=1_000_000)
    eval_batch_size: int = ranged(500, ge=1, le=1_048_576)
    log_every: int = ranged(20, ge=1, le=1_000_000)
    precision: str = choice("auto", ("auto", "fp32", "bf16"))
    channels_last: bool = True
    compile: bool = False
    compile_augment: bool = False
    sync_batchnorm: bool = False
    data_placement: str = choice("auto", ("auto", "resident", "streaming"))
    data_memory_limit_mb: float = ranged(0.0, ge=0)
    progress: bool = True


@dataclass
class SelfLabelConfig:
    """The self-labelling stage a run may end with (``--then self-label``; ``methods/self_label.py``): the
    network trained with class-balanced cross-entropy on strong views of its own confident predictions.
    ``threshold`` (alpha) and ``per_cluster_share`` (gamma: per batch and cluster at most ceil(B/K gamma) of
    the most confident; 0 keeps every sample above the threshold, SCAN's rule) as TCL's boosting, whose
    alpha = 0.99 the paper presets keep; by default alpha = 0 (off): a short run's head is unsure (MNIST-5k
    after 2 minutes: median confidence 0.73, 0.4% above 0.99), and there the per-cluster share alone, as
    SPICE's most confident per cluster, is what works (docs/self-labelling.md);
    ``balanced``: weights the inverse of each pseudo-label's frequency in the batch (SCAN, TCL). Under a
    time budget the stage takes ``budget_share`` of it (skipped, and said so, when that is under
    ``min_seconds``); without one it runs ``epochs``. Adam with ``lr`` and ``weight_decay`` (TCL's 1e-4, 1e-4).
    Strong views: images get ``strong_ops`` random operations and a cutout of up to ``cutout`` of the side
    (TCL: 4 ops, a hole up to 75 of 224 px); vectors ``noise_scale`` times the run's noise and
    ``feature_dropout``."""

    enabled: bool = False
    threshold: float = probability(0.0)
    per_cluster_share: float = ranged(0.5, ge=0, le=1)
    balanced: bool = True
    budget_share: float = ranged(0.25, gt=0, lt=1)
    min_seconds: float = ranged(10.0, ge=0)
    epochs: int = ranged(20, ge=1, le=1_000_000)
    lr: float = ranged(1e-4, gt=0)
    weight_decay: float = ranged(1e-4, ge=0)
    strong_ops: int = ranged(4, ge=0, le=8)
    cutout: float = ranged(0.33, ge=0, le=1)
    noise_scale: float = ranged(2.0, ge=0)
    feature_dropout: float = ranged(0.3, ge=0, lt=1)


@dataclass
class RunConfig:
    """Everything that defines a run: which method, how many clusters, the data (and, for a table, its
    label and id columns; for images through a frozen pretrained backbone, the backbone and its weights),
    and each part's settings.
    ``recipe``: for the ``auto`` preset, the data and device it was chosen for and each choice's reason.
    ``uncertain_below``: a sample whose confidence (its cluster's probability) is below this is flagged
    ``uncertain`` in assignments.csv (0.5: its cluster holds less than half of its probability).
    ``data`` is stored absolute (a built-in name as it is), so that the run reads its own data from any
    working folder; ``data_as_typed`` is how it was given, for messages. ``image_size``: the side the
    images were read at when one was asked for (``--image-size``), so that they are read again alike."""

    method: str = "cc"
    n_clusters: int = ranged(10, ge=2, le=100_000)
    data: str | None = None
    data_as_typed: str | None = None
    image_size: int | None = None
    label_column: str | None = None
    id_column: str | None = None
    frozen_backbone: str | None = None
    backbone_weights: str | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method_options: Any = None
    preset: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)
    uncertain_below: float = ranged(0.5, ge=0, le=1)
    self_label: SelfLabelConfig = field(default_factory=SelfLabelConfig)

    def __post_init__(self) -> None:
        if self.method_options is None or isinstance(self.method_options, dict):
            cls = method_options_class(self.method)
            self.method_options = _build(cls, self.method_options or {}, "method")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def validate(self) -> None:
        """Every field's declared type, range and choices, then the rules that tie fields together."""
        if not isinstance(self.method, str):
            raise ConfigError(f"method must be a method's name, got {self.method!r}")
        expected = method_options_class(self.method)
        if not isinstance(self.method_options, expected):
            raise ConfigError(f"the options of method {self.method} must be {expected.__name__}, "
                              f"got {type(self.method_options).__name__}")
        check_fields(self, names={"method_options": "method"})
        for name, (low, high) in (("augment.crop_scale", self.augment.crop_scale),
                                  ("augment.crop_ratio", self.augment.crop_ratio),
                                  ("augment.blur_sigma", self.augment.blur_sigma)):
            if low > high:
                raise ConfigError(f"{name} must be (low, high) with low <= high, got ({low}, {high})")


# Each method's options dataclass, by method name. ``contraclust.methods.lookup`` fills it as it imports the
# methods, which import this module for ModelConfig; this module names that one only when an options class
# is first asked for, so that the config (and the command line's parser) can be read without torch.
_METHOD_OPTIONS: dict[str, type] = {}


def register_method_options(name: str, options_class: type) -> None:
    _METHOD_OPTIONS[name] = options_class


def method_options_class(name: str) -> type:
    if not _METHOD_OPTIONS:
        importlib.import_module("contraclust.methods.lookup")  # registers every method's options
    if name not in _METHOD_OPTIONS:
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(_METHOD_OPTIONS)}")
    return _METHOD_OPTIONS[name]


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from its ``to_dict`` form (e.g. a run's config.json), checked."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(data).__name__}")
    config = _build(RunConfig, data, "")
    config.validate()
    return config


def read_config_file(path: str | Path, consequence: str = "the run cannot be read from it") -> RunConfig:
    """A run's ``config.json``, checked; a missing or corrupt file is one error naming it, and the
    ``consequence`` for what the caller does."""
    path = Path(path)
    if not path.is_file():
        raise ContraclustError(f"{path.parent} has no config.json: it is not a run folder")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path} is corrupt ({exc}); {consequence}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is corrupt (not a JSON object); {consequence}")
    return config_from_dict(data)


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
