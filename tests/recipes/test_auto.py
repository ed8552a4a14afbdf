"""The auto recipe's choices for grey/colour, tiny/large, few/many images, vectors, CPU and CUDA; and that
a named preset is never changed by them."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from contraclust.config import config_from_dict
from contraclust.data import load_data
from contraclust.presets import PRESETS, build_config, cc_stage_config, get_preset
from contraclust.recipes.auto import DataProfile, DeviceProfile, auto_recipe


CPU = DeviceProfile("cpu", "test CPU, 2 threads", threads=2)
GPU = DeviceProfile("cuda", "test GPU, 80 GiB", fast_bf16=True, memory_gb=80)


def images(n, size, channels):
    return DataProfile("test", n, True, channels=channels, size=size, labelled=True)


def test_grey_digits_on_cpu_keep_size_and_grey_with_affine_views():
    config = auto_recipe(images(5000, 28, 1), CPU)
    assert config.preset == "auto" and config.method == "c3"
    assert config.augment.size == 28 and config.model.backbone == "small_cnn"
    assert config.augment.flip_p == 0 and config.augment.hue is False and config.augment.rotate_degrees > 0
    assert config.train.budget_seconds == 600 and config.train.batch_size == 64
    assert set(config.recipe["reasons"]) >= {"augment.size", "model.backbone", "channels", "augment",
                                             "train.batch_size", "optim", "train.budget_seconds", "method"}


def test_colour_photos_on_cpu_are_capped_and_get_colour_views():
    config = auto_recipe(images(5000, 64, 3), CPU, n_clusters=5)
    assert config.method == "cc" and config.method_options.cluster_heads == 5  # C3 needs stronger features
    assert auto_recipe(images(5000, 64, 3), GPU).method == "c3"
    assert config.augment.size == 32 and config.model.backbone == "small_cnn"
    assert config.augment.hue and config.augment.flip_p == 0.5 and config.augment.grayscale_p > 0
    assert "shrunk" in config.recipe["reasons"]["augment.size"]
    # benchmarks/photo_recipe.py: batch 256 with CC's crops of 8-100% won on one photo set and lost on another
    assert config.train.batch_size == 64 and config.augment.crop_scale == (0.2, 1.0)
    assert "lost on the other five" in config.recipe["reasons"]["train.batch_size"]
    assert "--budget 30m" in config.recipe["reasons"]["train.budget_seconds"]
    assert auto_recipe(images(3000, 200, 1), CPU).train.batch_size == 64


def test_tiny_images_are_never_upscaled_on_cpu_but_may_be_on_gpu():
    assert auto_recipe(images(1797, 8, 1), CPU).augment.size == 8
    assert auto_recipe(images(2000, 16, 3), CPU).augment.size == 16
    assert auto_recipe(images(2000, 16, 3), GPU).augment.size == 32


def test_large_grey_photos_get_flips_but_no_hue():
    config = auto_recipe(images(3000, 200, 1), CPU)
    assert config.augment.size == 32 and config.augment.flip_p == 0.5 and not config.augment.hue
    assert config.augment.rotate_degrees == 0


def test_gpu_backbones_grow_with_the_images():
    small, mid, large = (auto_recipe(images(60000, s, 3), GPU) for s in (32, 96, 500))
    assert (small.model.backbone, small.model.stem, small.augment.size) == ("resnet18", "cifar", 32)
    assert (mid.model.backbone, mid.model.stem, mid.augment.size) == ("resnet18", "cifar", 96)
    assert (large.model.backbone, large.model.stem, large.augment.size) == ("resnet34", "imagenet", 224)
    assert small.train.budget_seconds == 1800 and small.train.batch_size == 512 and small.train.compile
    assert auto_recipe(images(5000, 28, 1), GPU).model.backbone == "small_cnn"


def test_batch_size_follows_the_data_and_the_clusters():
    assert auto_recipe(images(180, 32, 3), CPU).train.batch_size == 64      # at most half of N
    assert auto_recipe(images(100, 32, 3), CPU).train.batch_size == 32
    assert auto_recipe(images(20000, 32, 3), CPU, n_clusters=100).train.batch_size == 512  # 4 per cluster
    assert auto_recipe(images(5000, 32, 3), GPU).train.batch_size == 256
    assert auto_recipe(images(100_000, 32, 3), GPU).train.batch_size == 512


def test_vectors_get_an_mlp_and_noise_views():
    config = auto_recipe(DataProfile("emb", 1797, False, dim=64, labelled=True), CPU)
    assert config.method == "c3" and config.model.backbone == "mlp" and config.augment.noise_std > 0 and config.train.batch_size == 256
    assert config.augment.neighbours == 10 and config.model.input_norm == "standardize"
    assert config.train.budget_seconds == 120


def test_method_switch_and_the_c3_stage_of_auto():
    cc = auto_recipe(images(5000, 28, 1), CPU, method="cc")
    assert cc.method == "cc" and "method" not in cc.recipe["reasons"]
    assert auto_recipe(images(5000, 28, 1), CPU, method="drc").method == "drc"
    c3 = auto_recipe(images(5000, 28, 1), CPU)
    assert c3.optim.lr == pytest.approx(cc.optim.lr / 10)
    stage = cc_stage_config(c3)
    assert stage.method == "cc" and stage.optim.lr == cc.optim.lr and stage.model == c3.model
    fraction = c3.method_options.cc_stage_budget_fraction
    assert stage.train.budget_seconds == pytest.approx(600 * fraction)


def test_recipe_round_trips_through_config_json():
    config = auto_recipe(images(5000, 64, 3), GPU)
    again = config_from_dict(json.loads(config.to_json()))
    assert again == config and cc_stage_config(again) == cc_stage_config(config)


def test_epochs_for_an_auto_c3_run_cover_both_stages():
    config = build_config(None, None, profile=images(5000, 28, 1), device="cpu", epochs=20)
    assert config.method_options.cc_stage_epochs + config.train.epochs == 20
    assert config.train.budget_seconds == 0 and cc_stage_config(config).train.budget_seconds == 0


@pytest.mark.parametrize("name", list(PRESETS))
def test_named_presets_are_never_changed_by_auto(name):
    for profile in (images(5000, 28, 1), images(500, 300, 3)):
        for device in ("cpu", "auto"):
            assert build_config(None, name, profile=profile, device=device) == get_preset(name)
    assert get_preset(name).recipe == {}


def test_auto_reads_grey_folders_as_grey(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        grey_rgb = np.repeat(rng.integers(0, 255, (28, 28, 1), dtype=np.uint8), 3, axis=2)
        Image.fromarray(grey_rgb).save(tmp_path / f"rgb{i}.png")
    data = load_data(tmp_path, progress=False)
    assert data.images.shape == (12, 1, 28, 28)
    assert DataProfile.of(data).channels == 1


def test_device_profile_of_the_cpu():
    profile = DeviceProfile.of(torch.device("cpu"))
    assert profile.kind == "cpu" and profile.threads >= 1 and "CPU" in profile.description


def test_embedded_photos_get_the_vectors_budget_after_their_embedding_within_the_images_default():
    from contraclust.recipes.auto import budget_after_embedding

    vectors = DataProfile("embedded", 5000, False, dim=1280, labelled=True)
    config = build_config(profile=vectors, device="cpu", n_clusters=5)
    assert config.method == "c3" and config.train.budget_seconds == 120
    budget_after_embedding(config, 290.0, CPU)
    assert config.train.budget_seconds == 410  # the embedding's 290 s, then the vectors' 120 s
    stage = cc_stage_config(config)  # the CC stage ends 85% of the way through the training time, not the job's
    assert stage.train.budget_seconds == pytest.approx(290 + 0.85 * 120)
    assert "reading and embedding the images took 290 s" in config.recipe["reasons"]["train.budget_seconds"]
    late = build_config(profile=vectors, device="cpu", n_clusters=5)
    budget_after_embedding(late, 550.0, CPU)
    assert late.train.budget_seconds == 600  # never past the images' default for the whole job
    gpu = build_config(profile=vectors, device="cpu", n_clusters=5)
    budget_after_embedding(gpu, 1750.0, GPU)
    assert gpu.train.budget_seconds == 1800  # a GPU job's 30 minutes


def test_self_labelling_is_chosen_where_it_was_measured_to_pay_and_shares_the_training_time_not_the_embedding():
    from contraclust.recipes.auto import budget_after_embedding
    from contraclust.run.stages import before_self_labelling_config, default_stages

    assert auto_recipe(images(5000, 28, 1), CPU).self_label.enabled  # MNIST-5k on a CPU
    assert not auto_recipe(images(5000, 64, 3), CPU).self_label.enabled  # colour photos from scratch
    pixels = DataProfile("digits", 1797, False, dim=64, labelled=True)
    assert not auto_recipe(pixels, CPU).self_label.enabled  # pixel vectors lost NMI with it
    frozen = DataProfile("embedded", 5000, False, dim=1280, labelled=True, frozen_features=True)
    config = build_config(profile=frozen, device="cpu", n_clusters=5)
    assert config.self_label.enabled and "MobileNetV2" in config.recipe["reasons"]["self_label.enabled"]
    budget_after_embedding(config, 290.0, CPU)
    assert config.train.budget_seconds == 410
    assert config.train.budget_seconds * config.self_label.budget_share == pytest.approx(0.25 * 120)
    method = before_self_labelling_config(config)  # embedding 290 s, the method 90 s, self-labelling 30 s
    assert method.train.budget_seconds == pytest.approx(380)
    assert cc_stage_config(method).train.budget_seconds == pytest.approx(290 + 0.85 * 90)
    assert [s.name for s in default_stages(config, False)] == ["CC stage", "C3 stage", "self-labelling"]
    off = build_config(profile=frozen, device="cpu", n_clusters=5, overrides=["self_label.enabled=false"])
    assert not off.self_label.enabled
