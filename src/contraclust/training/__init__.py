"""The trainer, checkpoints, and the torch.distributed layer."""
from contraclust.training.trainer import Trainer, TrainResult, build_method, predict_probabilities, resolve_device

__all__ = ["TrainResult", "Trainer", "build_method", "predict_probabilities", "resolve_device"]
