"""The trainer, checkpoints, device choices, and the torch.distributed layer."""
from contraclust.training.device import resolve_device
from contraclust.training.inference import embed_samples, predict_probabilities
from contraclust.training.trainer import Trainer, TrainResult, build_method

__all__ = ["TrainResult", "Trainer", "build_method", "embed_samples", "predict_probabilities", "resolve_device"]
