import math
import sys

import numpy as np
import pytest
import torch

from contraclust.augment import FeatureAugmenter, ImageAugmenter
from contraclust.augment import ops
from contraclust.config import AugmentConfig
from helpers import ROOT

IDENTITY = dict(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, grayscale_p=0.0, blur_p=0.0)


def random_images(n=8, c=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, size, size), generator=g, dtype=torch.uint8)


def test_probability_zero_is_identity():
    images = random_images()
    aug = ImageAugmenter(AugmentConfig(size=32, **IDENTITY))
    out = aug(images, torch.Generator().manual_seed(1))
    assert torch.allclose(out, images.float() / 255, atol=1e-5)


def test_crop_areas_fall_in_scale_range_and_ratio():
    boxes = ops.sample_crop_boxes(20000, 32, 32, (0.08, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(0),
                                  torch.device("cpu"))
    area = boxes[:, 2] * boxes[:, 3] / (32 * 32)
    ratio = boxes[:, 3] / boxes[:, 2]
    fitted = area < 0.999  # the fallback (whole image) is the only other outcome for square images
    assert area.min() >= 0.08 - 1e-6 and area.max() <= 1.0 + 1e-6
    assert ratio[fitted].min() >= 0.75 - 1e-5 and ratio[fitted].max() <= 4 / 3 + 1e-5
    # area ~ U(0.08, 1) for draws that fit: the mean of fitted areas is below the uniform mean
    # (large areas with extreme ratios do not fit) but well above the lower bound
    assert 0.3 < area[fitted].mean() < 0.54
    top, left, h, w = boxes.unbind(1)
    assert (top >= -1e-5).all() and (left >= -1e-5).all()
    assert (top + h <= 32 + 1e-4).all() and (left + w <= 32 + 1e-4).all()


def test_flip_and_grayscale_rates():
    n = 4000
    aug = ImageAugmenter(AugmentConfig(size=32))
    params = aug.sample(n, 32, 32, torch.Generator().manual_seed(0), torch.device("cpu"))
    flipped = params.theta[:, 0, 0] < 0
    assert abs(flipped.float().mean().item() - 0.5) < 0.04
    assert abs(params.grey.float().mean().item() - 0.2) < 0.03
    jittered = (params.jitter_factors != torch.tensor([1.0, 1.0, 1.0, 0.0])).any(dim=1)
    assert abs(jittered.float().mean().item() - 0.8) < 0.03


def test_jitter_factor_ranges_follow_strength():
    s = 0.5
    aug = ImageAugmenter(AugmentConfig(size=32, jitter_strength=s, jitter_p=1.0))
    f = aug.sample(5000, 32, 32, torch.Generator().manual_seed(0), torch.device("cpu")).jitter_factors
    for k in range(3):
        assert f[:, k].min() >= 1 - 0.8 * s - 1e-6 and f[:, k].max() <= 1 + 0.8 * s + 1e-6
    assert f[:, 3].abs().max() <= 0.2 * s + 1e-6 and f[:, 3].abs().max() > 0.09


def test_flip_only_mirrors():
    images = random_images()
    cfg = AugmentConfig(size=32, **{**IDENTITY, "flip_p": 1.0})
    out = ImageAugmenter(cfg)(images, torch.Generator().manual_seed(0))
    assert torch.allclose(out, images.float().flip(-1) / 255, atol=1e-5)


def test_grayscale_makes_channels_equal():
    cfg = AugmentConfig(size=32, **{**IDENTITY, "grayscale_p": 1.0})
    out = ImageAugmenter(cfg)(random_images(), torch.Generator().manual_seed(0))
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 1], out[:, 2])


def test_hsv_round_trip_and_hue_zero_identity():
    x = torch.rand(4, 3, 8, 8)
    assert torch.allclose(ops.hsv_to_rgb(ops.rgb_to_hsv(x)), x, atol=1e-5)
    assert torch.allclose(ops.adjust_hue(x, torch.zeros(4)), x, atol=1e-5)
    # a half-turn hue shift of pure red gives cyan
    red = torch.zeros(1, 3, 1, 1)
    red[:, 0] = 1
    assert torch.allclose(ops.adjust_hue(red, torch.tensor([0.5])).flatten(), torch.tensor([0.0, 1.0, 1.0]), atol=1e-5)


def test_blur_preserves_constant_images_and_smooths_noise():
    const = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(ops.gaussian_blur(const, torch.tensor([1.0, 2.0]), 5), const, atol=1e-6)
    noise = torch.rand(2, 1, 32, 32)
    blurred = ops.gaussian_blur(noise, torch.tensor([2.0, 2.0]), 9)
    assert blurred.std() < noise.std() / 2


def test_batched_equals_per_sample_with_same_params():
    cfg = AugmentConfig(size=24, blur_p=0.5, rotate_degrees=10, shear_degrees=5, translate=0.05)
    aug = ImageAugmenter(cfg)
    images = random_images(n=6)
    params = aug.sample(6, 32, 32, torch.Generator().manual_seed(3), torch.device("cpu"))
    batched = aug.apply(images, params)
    for i in range(6):
        single = aug.apply(images[i: i + 1], params.index(slice(i, i + 1)))
        assert torch.allclose(batched[i: i + 1], single, atol=1e-5)


def test_output_size_and_range_for_grey_and_rgb():
    for channels in (1, 3):
        out = ImageAugmenter(AugmentConfig(size=20, blur_p=1.0))(random_images(c=channels), None)
        assert out.shape == (8, channels, 20, 20) and out.min() >= 0 and out.max() <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_same_code_on_cuda():
    aug = ImageAugmenter(AugmentConfig(size=32, blur_p=0.5))
    images = random_images().cuda()
    out = aug(images, torch.Generator(device="cuda").manual_seed(0))
    assert out.is_cuda and out.shape == (8, 3, 32, 32)


def test_feature_views_noise_and_dropout():
    aug = FeatureAugmenter(AugmentConfig(noise_std=0.0, feature_dropout=0.5))
    x = torch.ones(1000, 10)
    out = aug(x, torch.Generator().manual_seed(0))
    assert abs((out == 0).float().mean().item() - 0.5) < 0.03
    assert torch.allclose(out[out != 0], torch.tensor(2.0))
    assert math.isclose(FeatureAugmenter(AugmentConfig()).eval_view(x).sum().item(), 10000)


def paper_crop_only():
    """cc-paper-cifar10's crop and flip (224 px from 32 px images), colour, grey and blur off."""
    from contraclust.presets import get_preset

    cfg = get_preset("cc-paper-cifar10").augment
    cfg.jitter_p, cfg.grayscale_p, cfg.blur_p = 0.0, 0.0, 0.0
    return cfg


def test_crops_of_a_white_image_have_no_dark_frame():
    white = torch.full((64, 3, 32, 32), 255, dtype=torch.uint8)
    aug = ImageAugmenter(paper_crop_only())
    views = aug(white, torch.Generator().manual_seed(0))
    assert views.shape == (64, 3, 224, 224)
    edges = torch.cat([views[..., 0, :], views[..., -1, :], views[..., :, 0], views[..., :, -1]], dim=-1)
    assert edges.min() >= 0.97 and views.min() >= 0.97, float(edges.min())


@pytest.mark.parametrize("box,size", [((0.0, 0.0, 32.0, 32.0), 32), ((0.0, 0.0, 32.0, 32.0), 48),
                                      ((0.0, 20.0, 12.0, 12.0), 32), ((19.5, 0.0, 12.5, 9.0), 24),
                                      ((3.25, 7.5, 20.0, 24.5), 40)])
def test_a_crop_equals_pils_crop_and_resize_of_the_same_box(box, size):
    """Full-frame and edge crops, resized up (CIFAR's crops never shrink at the papers' sizes), as PIL's
    bilinear resize of the box, which torchvision's RandomResizedCrop calls."""
    from PIL import Image

    image = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    top, left, h, w = box
    boxes = torch.tensor([box])
    none = torch.zeros(1)
    theta = ops.affine_matrices(boxes, torch.tensor([False]), none, none, torch.zeros(1, 2), 32, 32)
    ours = ops.warp(image, theta, size)[0, 0]
    pil = Image.fromarray(image[0, 0].numpy(), mode="F").resize((size, size), Image.BILINEAR,
                                                              box=(left, top, left + w, top + h))
    assert torch.allclose(ours, torch.from_numpy(np.array(pil)), atol=2e-3)


def test_space_a_rotation_uncovers_is_filled_with_zeros():
    cfg = AugmentConfig(size=32, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0,
                        grayscale_p=0.0, blur_p=0.0)
    theta = ops.affine_matrices(torch.tensor([[0.0, 0.0, 32.0, 32.0]]), torch.tensor([False]),
                                torch.tensor([math.radians(45)]), torch.zeros(1), torch.zeros(1, 2), 32, 32)
    view = ops.warp(torch.ones(1, 3, 32, 32), theta, cfg.size)[0]
    assert view[:, 0, 0].max() == 0 and view[:, 16, 16].min() == 1  # a corner uncovered, the centre kept


@pytest.mark.parametrize("order", ["random", "fixed"])
@pytest.mark.parametrize("hue,channels", [(True, 3), (False, 3), (False, 1)])
def test_jitter_once_per_operation_equals_the_sixteen_pass_jitter(order, hue, channels):
    cfg = AugmentConfig(size=16, jitter_order=order, hue=hue, jitter_strength=1.0, jitter_p=0.8)
    aug = ImageAugmenter(cfg)
    g = torch.Generator().manual_seed(4)
    x = torch.rand(128, channels, 16, 16, generator=g)
    params = aug.sample(128, 16, 16, g, torch.device("cpu"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from view_speed import jitter_in_sixteen_passes  # the previous implementation, the benchmark's "before"

    assert torch.allclose(aug._jitter(x.clone(), params), jitter_in_sixteen_passes(cfg, x.clone(), params), atol=1e-5)


def test_apply_compiles_whole():
    """``apply`` is a pure tensor function: torch.compile takes it without a graph break."""
    aug = ImageAugmenter(AugmentConfig(size=16, blur_p=0.5, rotate_degrees=10))
    images = random_images(n=8, size=20)
    params = aug.draw(images, torch.Generator().manual_seed(2))
    compiled = torch.compile(aug.apply, fullgraph=True, dynamic=False)
    assert torch.allclose(compiled(images, params), aug.apply(images, params), atol=1e-5)
