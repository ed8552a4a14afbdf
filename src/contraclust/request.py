"""What a fit is asked to do: every parameter of a fit, as ``contraclust fit``'s arguments and the estimator's
parameters give them, in one typed request that :func:`contraclust.prepare.prepare` turns into a run's config
and data. Plain data, read without torch, so that a face can build and check one (its budget, say) before
anything heavy is imported."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from contraclust.errors import ConfigError
from contraclust.training.budget import parse_duration

if TYPE_CHECKING:
    import numpy as np

    from contraclust.config import RunConfig


@dataclass
class Reading:
    """How data is read: a table's label and id columns, a side to resize a folder's images to, progress bars."""

    label_column: str | None = None
    id_column: str | None = None
    image_size: int | None = None
    progress: bool = True


@dataclass
class FitRequest:
    """Every parameter of a fit. ``data``: a path or built-in name (None: MNIST-5k), or samples (an ImageSet or
    FeatureSet, an array or tensor, with ``labels``). ``backbone``: a frozen pretrained backbone to embed
    images through (a short name or ``hf:``/``timm:``/``torchvision:`` id; ``"none"``: train from scratch even
    with one cached; None: ``auto`` decides); ``freeze`` must be True with one (fine-tuning is not supported).
    ``face``: who asks (``"cli"`` or ``"api"``), for the wording of hints; ``name_a_folder``: a request
    without ``out`` gets the default run folder (the CLI's ``runs/<preset>-<method>-seed<seed>``). ``read``:
    the caller's own reader of ``data`` (``reproduce``'s benchmarks), given the largest image side the
    preset or recipe takes, instead of the generic readers. ``then``: a stage to end the run with
    (``"self-label"``: ``config.self_label``, ``run/stages.py``)."""

    data: Any = None
    labels: np.ndarray | None = None
    n_clusters: int | None = None
    method: str | None = None
    preset: str | None = None
    budget: float | str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    seed: int | None = None
    overrides: list[str] = field(default_factory=list)
    cluster_prior: str | None = None
    prior_weight: float | None = None
    uncertain_below: float | None = None
    reading: Reading = field(default_factory=Reading)
    backbone: str | None = None
    weights: str | Path | None = None
    freeze: bool = False
    download: bool = False
    init: str | Path | None = None
    out: Path | None = None
    report: bool = True
    device: Any = "auto"
    started_at: float | None = None
    face: str = "cli"
    name_a_folder: bool = True
    read: Callable[[int | None], Any] | None = None
    then: str | None = None

    def budget_seconds(self) -> float | None:
        """The budget in seconds (parsed here, once; a bad duration is a ConfigError naming it)."""
        return None if self.budget is None else parse_duration(self.budget)

    @property
    def scratch(self) -> bool:
        """Train from scratch even with a backbone cached (``backbone="none"``)."""
        return self.backbone == "none"

    @property
    def path(self) -> str | None:
        """The data as a path or name, when it was given so (None for samples in memory)."""
        return str(self.data) if isinstance(self.data, (str, Path)) else None

    def run_folder(self, config: RunConfig) -> Path | None:
        """The run folder: as asked, or (``name_a_folder``) ``runs/<preset>-<method>-seed<seed>``, numbered when
        taken (under torchrun every rank names the same folder, so no numbering there); None: in memory."""
        if self.out is not None or not self.name_a_folder:
            return self.out
        from contraclust.run.folder import fresh_run_folder

        default = Path("runs") / f"{config.preset}-{config.method}-seed{config.train.seed}"
        return default if int(os.environ.get("WORLD_SIZE", "1")) > 1 else fresh_run_folder(default)

    def not_images(self, name: str) -> ConfigError:
        """A frozen backbone asked for, and the data are feature vectors."""
        if self.face == "api":
            return ConfigError(f"backbone={self.backbone!r} embeds images, but X holds feature vectors")
        return ConfigError(f"--backbone embeds images, but {name} holds feature vectors")
