"""The trainer, checkpoints, device choices, and the torch.distributed layer.

The names below are imported on first use, so that a light module of this package (``budget.py``'s
duration parser, say) can be read by the command line's parser without importing torch."""
from importlib import import_module

_PUBLIC = {"resolve_device": "contraclust.training.device", "embed_samples": "contraclust.training.inference",
           "predict_probabilities": "contraclust.training.inference", "Trainer": "contraclust.training.trainer",
           "TrainResult": "contraclust.training.trainer", "build_method": "contraclust.training.trainer"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'contraclust.training' has no attribute {name!r}")
