"""On-device, batched two-view augmentation."""
from contraclust.augment.pipeline import (
    FeatureAugmenter,
    FeatureViewParams,
    ImageAugmenter,
    ImageViewParams,
    build_augmenter,
)

__all__ = ["FeatureAugmenter", "FeatureViewParams", "ImageAugmenter", "ImageViewParams", "build_augmenter"]
