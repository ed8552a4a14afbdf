"""scikit-learn style estimator: ``ContrastiveClustering(n_clusters=10).fit(X).labels_``."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contraclust.augment import build_augmenter
from contraclust.config import RunConfig, config_from_dict
from contraclust.data import FeatureSet, ImageSet, Samples, from_array, load_data
from contraclust.errors import ConfigError, DataError
from contraclust.metrics import evaluate_clustering
from contraclust.presets import build_config, get_preset
from contraclust.recipes.auto import DataProfile, DeviceProfile, max_image_size
from contraclust.training import build_method, predict_probabilities, resolve_device
from contraclust.training.run_folder import RunLock, check_fresh, read_run_config, record_resume, resume_changes
from contraclust.training.stages import fit_run
from contraclust.training.trainer import check_data
from contraclust.training.checkpoint import load_checkpoint
from contraclust.training.device import autocast_context, autocast_dtype


class ContrastiveClustering:
    """Cluster images or feature vectors with a contrastive method (cc, c3, drc, clc).

    Parameters mirror the CLI: ``method`` (default: the recipe's), ``preset`` (default: ``auto``,
    chosen from the data and the device), ``budget`` (wall time, seconds or "10m"; default: auto's
    10 minutes on a CPU, 30 on a GPU), ``epochs`` (fixed length instead of a budget), ``batch_size``,
    ``device`` ("auto", "cpu", "cuda"), ``random_state`` (the seed), ``out_dir`` (logs and
    checkpoints; none by default; an existing run there is refused unless ``resume=True``, which
    continues it), ``overrides`` (dotted ``section.field=value``) and ``init`` (start from another
    run's weights).

    After ``fit``: ``labels_`` (N,), ``probabilities_`` (N, K), ``metrics_`` (NMI/ACC/ARI when
    labels were given), ``config_``, ``history_``, ``budget_plan_`` (the time plan, when budgeted).
    """

    def __init__(self, n_clusters: int = 10, method: str | None = None, preset: str | None = None,
                 budget: float | str | None = None, epochs: int | None = None, batch_size: int | None = None,
                 device: str | None = "auto", random_state: int | None = None, out_dir: str | Path | None = None,
                 overrides: list[str] | None = None, init: str | Path | None = None, progress: bool = True,
                 resume: bool = False):
        self.n_clusters = n_clusters
        self.method = method
        self.preset = preset
        self.budget = budget
        self.epochs = epochs
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.out_dir = out_dir
        self.overrides = overrides
        self.init = init
        self.progress = progress
        self.resume = resume

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("n_clusters", "method", "preset", "budget", "epochs", "batch_size",
                                              "device", "random_state", "out_dir", "overrides", "init", "progress",
                                              "resume")}

    def set_params(self, **params: Any) -> "ContrastiveClustering":
        for key, value in params.items():
            if key not in self.get_params():
                raise ConfigError(f"unknown parameter {key!r}; parameters: {', '.join(self.get_params())}")
            setattr(self, key, value)
        return self

    def fit(self, X: Any, y: np.ndarray | None = None) -> "ContrastiveClustering":
        started_at = time.monotonic()
        device = resolve_device(self.device)
        auto = self.preset in (None, "auto")
        max_size = max_image_size(DeviceProfile.of(device)) if auto else get_preset(self.preset).augment.size
        data = as_samples(X, y, max_size)
        config = build_config(self.method, self.preset, data=str(X) if isinstance(X, (str, Path)) else None,
                              profile=DataProfile.of(data) if auto else None, device=device,
                              n_clusters=self.n_clusters, epochs=self.epochs, budget=self.budget,
                              batch_size=self.batch_size, seed=self.random_state,
                              overrides=_override_list(self.overrides) + ([] if self.progress
                                                                          else ["train.progress=false"]),
                              init=self.init is not None)
        check_data(config, data)
        out_dir = Path(self.out_dir) if self.out_dir is not None else None
        with RunLock(out_dir) if out_dir is not None else contextlib.nullcontext():
            if out_dir is not None and self.resume:
                stored = read_run_config(out_dir)
                record_resume(out_dir, resume_changes(stored, config), str(device))
                config.recipe = stored.recipe
            elif out_dir is not None:
                check_fresh(out_dir)
            trainer, result = fit_run(config, data, out_dir, device, self.init, resume=bool(self.resume),
                                      started_at=started_at)
        self.budget_plan_ = trainer.budget_plan.to_dict() if trainer.budget_plan else None
        self.config_: RunConfig = config
        self.model_ = trainer.method
        self.labels_ = result.labels
        self.probabilities_ = result.probabilities
        self.metrics_ = result.metrics
        self.history_ = result.history
        self.sample_shape_ = tuple(data.sample_shape)
        self.n_features_in_ = int(np.prod(data.sample_shape))
        return self

    def fit_predict(self, X: Any, y: np.ndarray | None = None) -> np.ndarray:
        return self.fit(X, y).labels_

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        data = as_samples(X)
        if tuple(data.sample_shape) != self.sample_shape_:
            raise DataError(f"this model was fitted on samples of shape {self.sample_shape_}; got samples of shape "
                            f"{tuple(data.sample_shape)}")
        return _predict(self.model_, self.config_, data, self.device)[1]

    def predict(self, X: Any) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)

    def score(self, X: Any, y: np.ndarray) -> float:
        """NMI of the predicted clusters against ``y``."""
        return evaluate_clustering(np.asarray(y), self.predict(X))["nmi"]

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ConfigError("this ContrastiveClustering instance is not fitted yet; call fit first")


def _override_list(overrides: Any) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, (str, bytes)) or not isinstance(overrides, (list, tuple)):
        raise ConfigError(f"overrides must be a list of 'section.field=value' strings, got {overrides!r}")
    return list(overrides)


def as_samples(X: Any, y: np.ndarray | None = None, max_size: int | None = None) -> Samples:
    """Accept an ImageSet/FeatureSet, an array (images or feature vectors), a tensor, or a data path/name
    (folders of images larger than ``max_size`` are shrunk to it)."""
    if isinstance(X, (ImageSet, FeatureSet)):
        return X
    if isinstance(X, (str, Path)):
        return load_data(X, max_size=max_size)
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    return from_array(X, y)


def load_model(checkpoint: str | Path, sample_shape: tuple[int, ...]) -> tuple[torch.nn.Module, RunConfig]:
    """A trained method and its config from a checkpoint file or run folder."""
    state = load_checkpoint(checkpoint)
    config = config_from_dict(state["config"])
    try:
        method = build_method(config, sample_shape)
        method.load_state_dict(state["model"])
    except (RuntimeError, ConfigError) as exc:
        raise DataError(f"the data's sample shape {sample_shape} does not fit the model in {checkpoint} "
                        f"({str(exc).splitlines()[0][:120]})") from None
    return method, config


def _predict(method: torch.nn.Module, config: RunConfig, data: Samples, device: str | None):
    """Probabilities under the same precision and memory format as the run's own evaluations."""
    dev = resolve_device(device)
    channels_last = config.train.channels_last and data.is_image
    method.to(dev, memory_format=torch.channels_last) if channels_last else method.to(dev)
    augment = build_augmenter(config.augment, data.is_image)
    dtype = autocast_dtype(config.train.precision, dev)
    return predict_probabilities(method, augment, data.tensor.to(dev), config.train.eval_batch_size,
                                 lambda: autocast_context(dtype, dev), channels_last)


def predict_checkpoint(checkpoint: str | Path, data: Samples, device: str | None = "auto"):
    """(labels, probabilities, config) of ``data`` under the model in ``checkpoint``."""
    method, config = load_model(checkpoint, data.sample_shape)
    labels, probabilities = _predict(method, config, data, device)
    return labels, probabilities, config
