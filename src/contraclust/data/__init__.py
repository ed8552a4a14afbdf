"""Data: the in-memory sample sets and the readers that fill them.

The names below are imported on first use, so that the command line's parser can read this package's
light tables (the benchmarks' layouts) without importing torch."""
from importlib import import_module

_PUBLIC = {"FeatureSet": "contraclust.data.dataset", "ImageSet": "contraclust.data.dataset",
           "Samples": "contraclust.data.dataset",
           **{name: "contraclust.data.readers" for name in (
               "from_array", "load_data", "read_array_file", "read_cifar", "read_image_folder", "read_mnist5k",
               "read_sklearn_digits")}}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'contraclust.data' has no attribute {name!r}")
