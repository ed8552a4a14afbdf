"""Declared ranges and choices of config fields, and the one check that enforces them.

A config dataclass declares each constraint beside its default (``lr: float = ranged(3e-4, gt=0)``,
``schedule: str = choice("constant", ("constant", "cosine"))``); :func:`check_fields` walks a
config, nested dataclasses included, and raises one :class:`ConfigError` that names the first
field whose value has the wrong type, is not finite, leaves its range or is not one of its choices.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import field
from typing import Any

from contraclust.errors import ConfigError


def ranged(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
           lt: float | None = None) -> Any:
    """A numeric field (or tuple of numbers) whose every value must lie within the given bounds."""
    return field(default=default, metadata={"ge": ge, "gt": gt, "le": le, "lt": lt})


def probability(default: float) -> Any:
    return ranged(default, ge=0.0, le=1.0)


def choice(default: str, options: tuple[str, ...]) -> Any:
    """A string field that must be one of ``options``."""
    return field(default=default, metadata={"choices": tuple(options)})


def check_fields(obj: Any, path: str = "", names: dict[str, str] | None = None) -> None:
    """Raise a ConfigError naming the first field of dataclass ``obj`` (recursively) that breaks its
    declared type, range or choices. ``names`` renames fields in messages (``method_options`` ->
    ``method``, as written in overrides)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = (names or {}).get(f.name, f.name)
        where = f"{path}.{name}" if path else name
        if dataclasses.is_dataclass(value):
            check_fields(value, where)
            continue
        _check_type(value, hints[f.name], where)
        for item in value if isinstance(value, tuple) else (value,):
            if item is not None and f.metadata:
                _check_bounds(item, f.metadata, where)


def _check_type(value: Any, hint: Any, where: str) -> None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _check_type(value, arg, where)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if errors else ConfigError(f"{where} cannot be {value!r}")
    if origin is tuple:
        if not isinstance(value, tuple):
            raise ConfigError(f"{where} must be a list of values, got {value!r}")
        fixed = [a for a in args if a is not Ellipsis]
        if Ellipsis not in args and len(value) != len(fixed):
            raise ConfigError(f"{where} needs {len(fixed)} values, got {len(value)}: {value!r}")
        for item, item_hint in zip(value, fixed * len(value) if Ellipsis in args else fixed):
            _check_type(item, item_hint, where)
        return
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            raise ConfigError(f"{where} must be a section of settings, got {value!r}")
    elif hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
    elif hint is str and not isinstance(value, str):
        raise ConfigError(f"{where} must be text, got {value!r}")


def _check_bounds(value: Any, rules: dict[str, Any], where: str) -> None:
    choices = rules.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{where} must be one of {', '.join(choices)}; got {value!r}")
    for key, holds, text in (("ge", lambda v, b: v >= b, "at least"), ("gt", lambda v, b: v > b, "greater than"),
                             ("le", lambda v, b: v <= b, "at most"), ("lt", lambda v, b: v < b, "less than")):
        bound = rules.get(key)
        if bound is not None and not holds(value, bound):
            shown = bound if isinstance(bound, int) else f"{bound:g}"  # 4294967295, not 4.29497e+09
            raise ConfigError(f"{where} must be {text} {shown}, got {value!r}")
