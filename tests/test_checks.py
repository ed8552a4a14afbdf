from dataclasses import dataclass

import pytest

from contraclust.checks import check_fields, choice, probability, ranged
from contraclust.config import RunConfig, apply_overrides, config_from_dict
from contraclust.errors import ConfigError
from contraclust.presets import PRESETS, build_config


@dataclass
class Inner:
    rate: float = ranged(0.5, gt=0)
    sizes: tuple[int, ...] = ranged((4, 8), ge=1)


@dataclass
class Outer:
    mode: str = choice("a", ("a", "b"))
    p: float = probability(0.2)
    hidden: int | None = ranged(None, ge=1)
    flag: bool = False
    inner: Inner = None

    def __post_init__(self):
        self.inner = self.inner or Inner()


@pytest.mark.parametrize("change,message", [
    ({"mode": "c"}, "mode must be one of a, b; got 'c'"),
    ({"p": 1.5}, "p must be at most 1"),
    ({"p": float("nan")}, "p must be a finite number"),
    ({"p": "0.3"}, "p must be a number"),
    ({"hidden": 0}, "hidden must be at least 1"),
    ({"hidden": 2.5}, "hidden must be a whole number"),
    ({"flag": 1}, "flag must be true or false"),
    ({"inner": Inner(rate=0.0)}, "inner.rate must be greater than 0"),
    ({"inner": Inner(sizes=(4, 0))}, "inner.sizes must be at least 1"),
    ({"inner": Inner(sizes=[4])}, "inner.sizes must be a list"),
])
def test_each_rule_names_the_field(change, message):
    obj = Outer()
    for key, value in change.items():
        setattr(obj, key, value)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        check_fields(obj)


def test_valid_values_pass_including_none_for_optional_fields():
    check_fields(Outer(hidden=None))
    check_fields(Outer(mode="b", p=1.0, hidden=3, inner=Inner(rate=2, sizes=(1,))))


def test_every_preset_and_the_auto_recipe_are_valid():
    for name in PRESETS:
        build_config(None, name)
    build_config(None, None)


@pytest.mark.parametrize("override,field", [
    ("optim.lr=-0.1", "optim.lr"), ("optim.lr=nan", "optim.lr"), ("optim.lr=inf", "optim.lr"),
    ("train.checkpoint_every=0", "train.checkpoint_every"), ("train.log_every=0", "train.log_every"),
    ("train.eval_batch_size=0", "train.eval_batch_size"), ("augment.flip_p=2", "augment.flip_p"),
    ("optim.schedule=linear", "optim.schedule"), ("method.cluster_heads=0", "method.cluster_heads"),
    ("method.tau_instance=0", "method.tau_instance"), ("augment.crop_scale=0.9,0.1", "augment.crop_scale"),
    ("train.precision=fp16", "train.precision"), ("model.stem=tiny", "model.stem"),
])
def test_overrides_out_of_range_are_refused_by_name(override, field):
    with pytest.raises(ConfigError, match=field):
        build_config("cc", None, overrides=[override])


def test_a_corrupt_stored_config_is_a_config_error():
    good = build_config("cc", None).to_dict()
    for broken in ({**good, "train": 5}, {**good, "n_clusters": "ten"}, {**good, "method_options": 3},
                   {**good, "method": "nope"}, [1, 2]):
        with pytest.raises(ConfigError):
            config_from_dict(broken)
    assert config_from_dict(good).to_dict() == good


@pytest.mark.parametrize("kwargs,message", [
    ({"n_clusters": 2.5}, "n_clusters must be a whole number"), ({"n_clusters": "3"}, "whole number"),
    ({"seed": True}, "seed must be a whole number"), ({"overrides": "train.epochs=3"}, "list of"),
    ({"epochs": 0}, "train.epochs must be at least 1"), ({"batch_size": 1}, "batch_size must be at least 2"),
])
def test_build_config_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build_config("cc", None, **kwargs)


def test_validate_checks_the_method_options_class():
    config = RunConfig(method="cc")
    apply_overrides(config, ["method.entropy_weight=0"])
    config.validate()
    config.method = "drc"
    with pytest.raises(ConfigError, match="DRCOptions"):
        config.validate()
