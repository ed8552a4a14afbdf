import json

import pytest
import torch

from contraclust.config import apply_overrides, config_from_dict
from contraclust.errors import ConfigError
from contraclust.methods import METHODS
from contraclust.presets import PRESETS, build_config, get_preset


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_validates_and_round_trips_through_json(name):
    config = get_preset(name)
    config.validate()
    again = config_from_dict(json.loads(config.to_json()))
    assert again == config


def test_cc_paper_presets_follow_the_spec():
    c10 = get_preset("cc-paper-cifar10")
    assert (c10.model.backbone, c10.model.stem, c10.augment.size) == ("resnet34", "imagenet", 224)
    assert (c10.train.batch_size, c10.train.epochs, c10.optim.name, c10.optim.lr) == (256, 1000, "adam", 3e-4)
    assert (c10.augment.jitter_strength, c10.augment.blur_p, c10.augment.crop_scale) == (0.5, 0.0, (0.08, 1.0))
    assert get_preset("cc-paper-imagenet10").augment.blur_p == 0.5
    assert get_preset("cc-paper-cifar100").n_clusters == 20
    assert get_preset("c3-paper-cifar10").method_options.zeta == 0.6


def test_the_imagenet_64_preset_balances_1000_clusters_within_a_gpu_day():
    config = get_preset("clc-imagenet1k-64")
    assert (config.method, config.n_clusters, config.augment.size, config.model.stem) == ("clc", 1000, 64, "cifar")
    assert config.train.budget_seconds == 24 * 3600 and config.train.checkpoint_every == 1
    queue, batch = config.method_options.sinkhorn_queue, config.train.batch_size
    assert (queue + batch) / config.n_clusters >= 9  # rows per cluster in each Sinkhorn balancing


def test_overrides_are_typed():
    config = build_config(overrides=["train.epochs=3", "augment.crop_scale=0.2,1.0", "method.tau_instance=0.2",
                                     "train.channels_last=false", "model.head_hidden=none"])
    assert config.train.epochs == 3 and config.augment.crop_scale == (0.2, 1.0)
    assert config.method_options.tau_instance == 0.2 and config.train.channels_last is False
    assert config.model.head_hidden is None
    for bad, message in (("train.epochs=abc", "expected a number"), ("train.nope=1", "unknown config field"),
                         ("optimizer.lr=1", "unknown config section"), ("train.epochs", "must look like")):
        with pytest.raises(ConfigError, match=message):
            apply_overrides(build_config(), [bad])


def test_switching_method_keeps_the_schedule_and_uses_method_defaults():
    for method in METHODS:
        config = build_config(method)
        assert config.method == method and type(config.method_options) is METHODS[method].Options
    assert build_config("c3", "mnist5k-cpu").preset == "mnist5k-cpu-c3"
    assert build_config("c3", "cifar10-fast").method_options.cc_stage_preset == "cifar10-fast"
    assert build_config("drc", "mnist5k-cpu").preset == "mnist5k-cpu"
    assert build_config("c3").method_options.cc_stage_preset == "auto"


def test_validation_errors():
    with pytest.raises(ConfigError, match="at least 2"):
        build_config(n_clusters=1)
    with pytest.raises(ConfigError, match="crop_scale"):
        build_config(overrides=["augment.crop_scale=0.5,0.2"])


def test_paper_presets_run_in_fp32_unless_bf16_is_asked_for():
    from contraclust.presets import PRESETS, build_config, get_preset
    from contraclust.training.device import autocast_dtype

    papers = [name for name in PRESETS if "-paper-" in name]
    assert len(papers) >= 20 and all(get_preset(name).train.precision == "fp32" for name in papers)
    assert autocast_dtype("fp32", torch.device("cuda")) is None  # no autocast: fp32 (TF32 matmuls) on CUDA
    asked = build_config(preset="cc-paper-cifar10", overrides=["train.precision=bf16"])
    assert asked.train.precision == "bf16" and autocast_dtype("bf16", torch.device("cuda")) == torch.bfloat16
    assert build_config(preset="c3-paper-cifar10").train.precision == "fp32"
    assert get_preset("cifar10-fast").train.precision == build_config(device="cpu").train.precision == "auto"
