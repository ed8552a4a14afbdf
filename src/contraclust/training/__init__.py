"""The trainer, checkpoints, device choices, and the torch.distributed layer."""
from contraclust.training.device import resolve_device
from contraclust.training.trainer import Trainer, TrainResult, build_method, predict_probabilities

__all__ = ["TrainResult", "Trainer", "build_method", "predict_probabilities", "resolve_device"]
