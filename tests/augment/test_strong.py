"""Strong views (TCL's RandAugment-like policy and cutout), batched: in range, reproducible, the hole grey."""
import torch

from contraclust.augment.pipeline import ImageAugmenter
from contraclust.augment.strong import OPERATIONS, apply_strong, draw_strong
from contraclust.config import AugmentConfig


def test_every_operation_keeps_images_in_range_and_shape():
    images = torch.rand(len(OPERATIONS), 3, 16, 16)
    params = draw_strong(len(OPERATIONS), 1, 0.0, torch.Generator().manual_seed(0), torch.device("cpu"))
    params.chosen[0] = torch.arange(len(OPERATIONS))  # each sample its own operation
    out = apply_strong(images, params)
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    changed = [(out[i] - images[i]).abs().max().item() > 1e-4 for i in range(len(OPERATIONS))]
    assert not changed[0] and sum(changed) >= len(OPERATIONS) - 2  # identity; weak magnitudes may change little


def test_cutout_greys_a_square_of_at_most_the_asked_side():
    images = torch.zeros(64, 1, 20, 20)
    params = draw_strong(64, 0, 0.5, torch.Generator().manual_seed(1), torch.device("cpu"))
    out = apply_strong(images, params)
    grey = (out == 0.5).float().mean(dim=(1, 2, 3))
    assert grey.max() <= 0.25 + 0.05 and grey.mean() > 0.02  # side <= half the image: area <= a quarter


def test_strong_views_come_from_the_pipeline_reproducibly_and_only_when_asked():
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    plain = ImageAugmenter(AugmentConfig(size=32))
    strong = ImageAugmenter(AugmentConfig(size=32, strong_ops=4, cutout=0.33))
    assert plain.draw(images, torch.Generator().manual_seed(0)).strong is None
    a = strong(images, torch.Generator().manual_seed(0))
    b = strong(images, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and not torch.equal(a, plain(images, torch.Generator().manual_seed(0)))
    assert strong.draw(images, torch.Generator().manual_seed(0)).index(slice(0, 3)).strong.chosen.shape == (4, 3)
