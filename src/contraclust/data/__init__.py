"""Data: the in-memory sample sets and the readers that fill them."""
from contraclust.data.dataset import FeatureSet, ImageSet, Samples
from contraclust.data.readers import (
    from_array,
    load_data,
    read_array_file,
    read_cifar,
    read_image_folder,
    read_mnist5k,
    read_sklearn_digits,
)

__all__ = [
    "FeatureSet", "ImageSet", "Samples", "from_array", "load_data", "read_array_file", "read_cifar",
    "read_image_folder", "read_mnist5k", "read_sklearn_digits",
]
