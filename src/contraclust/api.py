"""scikit-learn style estimator: ``ContrastiveClustering(n_clusters=10).fit(X).labels_``."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.exceptions import NotFittedError

from contraclust.config import RunConfig, config_from_dict
from contraclust.data import Samples, load_data
from contraclust.data.readers import is_image_folder
from contraclust.errors import CheckpointError, ConfigError, DataError
from contraclust.metrics import evaluate_clustering
from contraclust.methods.self_label import SelfLabel
from contraclust.models import pretrained
from contraclust.prepare import as_samples, prepare
from contraclust.request import FitRequest, Reading
from contraclust.run import Run
from contraclust.threads import threads_asked
from contraclust.training import resolve_device
from contraclust.training.checkpoint import FORMAT_VERSION, atomic_torch_save, load_checkpoint, to_plain
from contraclust.training.inference import (  # noqa: F401  (load_model, predict_checkpoint: the API's too)
    embed_data, load_model, model_from_state, predict_checkpoint, predict_data,
)


class NotFittedYet(ConfigError, NotFittedError):
    """The estimator is used before ``fit`` (scikit-learn's NotFittedError, and the project's own)."""


class ContrastiveClustering(ClusterMixin, TransformerMixin, BaseEstimator):
    """Cluster images or feature vectors with a contrastive method (cc, c3, drc, clc).

    Parameters mirror the CLI: ``method`` (default: the recipe's), ``preset`` (default: ``auto``,
    chosen from the data and the device), ``budget`` (wall time, seconds or "10m"; default: auto's
    10 minutes on a CPU, 30 on a GPU), ``epochs`` (fixed length instead of a budget), ``batch_size``,
    ``device`` ("auto", "cpu", "cuda"), ``random_state`` (the seed), ``out_dir`` (logs and
    checkpoints; none by default; an existing run there is refused unless ``resume=True``, which
    continues it, and a folder holding other files unless ``force=True``), ``threads`` (CPU threads;
    None: chosen from the measured speed, as the CLI's ``--threads``), ``overrides`` (dotted ``section.field=value``) and ``init`` (start from another
    run's weights). ``cluster_prior`` ("uniform", "none", "estimated") and ``prior_weight``: the
    prior of the method's balance term, for imbalanced data (default: the preset's, uniform with
    weight 1 as in the papers). ``backbone``: images are embedded once through this frozen pretrained
    network (a short name such as "dinov2-small", or "hf:"/"timm:"/"torchvision:" ids; ``download=True``
    fetches its weights) and the vectors clustered, as the CLI's ``--backbone X --freeze``; by default
    (None) the ``auto`` preset does so for colour photos when a known backbone is already in the local
    cache (``models/catalogue.py``), else trains from scratch and logs how to fetch one; "none" always
    trains from scratch. ``then="self-label"`` ends the run with a self-labelling stage (as ``--then``).

    After ``fit``: ``labels_`` (N,), ``probabilities_`` (N, K), ``metrics_`` (NMI/ACC/ARI when
    labels were given), ``config_``, ``history_``, ``budget_plan_`` (the time plan, when budgeted),
    ``n_features_in_``. ``predict``/``predict_proba`` assign new samples, ``transform`` embeds them
    (the backbone's L2-normalised features), ``save``/``load`` keep a fitted estimator in one file
    that holds tensors and plain data only (loading it runs no code).
    """

    def __init__(self, n_clusters: int = 10, method: str | None = None, preset: str | None = None,
                 budget: float | str | None = None, epochs: int | None = None, batch_size: int | None = None,
                 device: str | None = "auto", random_state: int | None = None, out_dir: str | Path | None = None,
                 overrides: list[str] | None = None, init: str | Path | None = None, progress: bool = True,
                 resume: bool = False, cluster_prior: str | None = None, prior_weight: float | None = None,
                 backbone: str | None = None, download: bool = False, force: bool = False,
                 threads: int | str | None = None, then: str | None = None):
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
        self.cluster_prior = cluster_prior
        self.prior_weight = prior_weight
        self.backbone = backbone
        self.download = download
        self.force = force
        self.threads = threads
        self.then = then

    def fit(self, X: Any, y: np.ndarray | None = None) -> "ContrastiveClustering":
        with threads_asked(self.threads):
            return self._fit(X, y)

    def _fit(self, X: Any, y: np.ndarray | None) -> "ContrastiveClustering":
        started_at = time.monotonic()
        request = self._request(X, y, started_at)
        prepared = prepare(request)
        self.backbone_ = prepared.backbone
        config, data = prepared.config, prepared.data
        if prepared.out is not None and self.resume:
            run = Run.resume(prepared.out, lambda stored: data, requested=config, device=prepared.device,
                             started_at=started_at)
        else:
            run = Run.start(config, data, prepared.out, device=prepared.device, init=self.init, started_at=started_at,
                            force=self.force)
        result = run.fit()
        trainer, config = run.trainer, run.config
        self.budget_plan_ = trainer.budget_plan.to_dict() if trainer.budget_plan else None
        self.config_: RunConfig = config
        self.model_ = trainer.method.method if isinstance(trainer.method, SelfLabel) else trainer.method
        self.labels_ = result.labels
        self.probabilities_ = result.probabilities
        self.metrics_ = result.metrics
        self.history_ = result.history
        self.sample_shape_ = tuple(data.sample_shape)
        self.n_features_in_ = int(np.prod(data.sample_shape))
        return self

    def _request(self, X: Any, y: np.ndarray | None, started_at: float | None = None) -> FitRequest:
        """The estimator's parameters as a :class:`~contraclust.request.FitRequest` (``contraclust fit`` makes
        the same from its arguments)."""
        return FitRequest(data=X, labels=y, n_clusters=self.n_clusters, method=self.method, preset=self.preset,
                          budget=self.budget, epochs=self.epochs, batch_size=self.batch_size, seed=self.random_state,
                          overrides=_override_list(self.overrides), cluster_prior=self.cluster_prior,
                          prior_weight=self.prior_weight, reading=Reading(progress=self.progress),
                          backbone=self.backbone, freeze=self.backbone not in (None, "none"), download=self.download,
                          init=self.init, out=Path(self.out_dir) if self.out_dir is not None else None, report=False,
                          device=self.device, started_at=started_at, face="api", name_a_folder=False, then=self.then)

    def fit_predict(self, X: Any, y: np.ndarray | None = None, **kwargs: Any) -> np.ndarray:
        return self.fit(X, y).labels_

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, K) cluster probabilities of new samples, read out as the fitted run reads out."""
        data = self._samples(X)
        return predict_data(self.model_, self.config_, data, self.device)[1]

    def predict(self, X: Any) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)

    def transform(self, X: Any) -> np.ndarray:
        """(N, D) embeddings of new samples: the backbone's L2-normalised features."""
        return embed_data(self.model_, self.config_, self._samples(X), self.device)

    def score(self, X: Any, y: np.ndarray) -> float:
        """NMI of the predicted clusters against ``y``."""
        return evaluate_clustering(np.asarray(y), self.predict(X))["nmi"]

    def save(self, path: str | Path) -> Path:
        """Write the fitted estimator (config, weights, parameters, results) to one file, atomically."""
        self._check_fitted()
        params = {k: str(v) if isinstance(v, Path) else v for k, v in self.get_params().items()}
        estimator = {"params": params, "sample_shape": list(self.sample_shape_), "metrics": self.metrics_,
                     "labels": torch.from_numpy(np.asarray(self.labels_, dtype=np.int64)),
                     "probabilities": torch.from_numpy(np.asarray(self.probabilities_, dtype=np.float32)),
                     "history": self.history_, "budget_plan": self.budget_plan_}
        path = Path(path)
        atomic_torch_save(to_plain({"format_version": FORMAT_VERSION, "config": self.config_.to_dict(),
                                    "model": self.model_.state_dict(), "estimator": estimator}), path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ContrastiveClustering":
        """A fitted estimator from ``save``'s file (read with ``weights_only=True``: no code runs)."""
        state = load_checkpoint(path)
        if "estimator" not in state:
            raise CheckpointError(f"{path} is a run's checkpoint, not a saved estimator; use "
                                  f"contraclust.api.predict_checkpoint or ContrastiveClustering(init=...)")
        saved = state["estimator"]
        model = cls(**{k: v for k, v in saved["params"].items() if k in cls().get_params()})
        model.config_ = config_from_dict(state["config"])
        model.sample_shape_ = tuple(saved["sample_shape"])
        model.model_ = model_from_state(state, model.config_, model.sample_shape_, path).eval()
        model.labels_ = saved["labels"].numpy()
        model.probabilities_ = saved["probabilities"].numpy()
        model.metrics_, model.history_ = saved["metrics"], saved["history"]
        model.budget_plan_ = saved["budget_plan"]
        model.n_features_in_ = int(np.prod(model.sample_shape_))
        return model

    def _samples(self, X: Any) -> Samples:
        """``X`` as samples of the shape this estimator was fitted on."""
        self._check_fitted()
        frozen = self.config_.frozen_backbone
        folder = isinstance(X, (str, Path)) and is_image_folder(X)
        data = self._backbone_input(X) if frozen and folder else as_samples(X)
        if frozen and data.is_image:  # through the backbone the fitted run embedded with
            data = pretrained.embed_images(data, self._fitted_backbone(), resolve_device(self.device),
                                           progress=self.progress)
        if tuple(data.sample_shape) != self.sample_shape_:
            got, expected = int(np.prod(data.sample_shape)), self.n_features_in_
            if got == expected:  # the same number of values, arranged otherwise (8x8 images as 64 features)
                kind = lambda shape: "images" if len(shape) == 3 else "feature vectors"  # noqa: E731
                raise DataError(f"X holds {kind(data.sample_shape)} of shape {tuple(data.sample_shape)}, but "
                                f"ContrastiveClustering was fitted on {kind(self.sample_shape_)} of shape "
                                f"{self.sample_shape_}; give X in that shape")
            raise DataError(f"X has {got} features, but ContrastiveClustering is expecting {expected} features as "
                            f"input (fitted on samples of shape {self.sample_shape_}, got {tuple(data.sample_shape)})")
        return data

    def _fitted_backbone(self):
        """The frozen backbone the fitted run embedded with, loaded on first use (a loaded estimator)."""
        if getattr(self, "backbone_", None) is None:
            self.backbone_ = pretrained.load_backbone(self.config_.frozen_backbone, self.config_.backbone_weights)
        return self.backbone_

    def _backbone_input(self, X: str | Path) -> Samples:
        """The data at path ``X``; image files read as the frozen backbone takes them (shorter side to its
        input side, the centre square), never whole."""
        return load_data(X, image_size=self._fitted_backbone().input_side, centre_crop=True)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedYet("this ContrastiveClustering instance is not fitted yet; call fit first")


def _override_list(overrides: Any) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, (str, bytes)) or not isinstance(overrides, (list, tuple)):
        raise ConfigError(f"overrides must be a list of 'section.field=value' strings, got {overrides!r}")
    return list(overrides)
