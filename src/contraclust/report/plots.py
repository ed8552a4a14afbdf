"""Pictures for people: a grid of augmented views, and training curves from a run's log.csv."""
from __future__ import annotations

import csv
from pathlib import Path

import torch

from contraclust.augment import ImageAugmenter
from contraclust.config import AugmentConfig
from contraclust.data import ImageSet
from contraclust.errors import DataError


def save_view_grid(data: ImageSet, augment: AugmentConfig, path: str | Path, n: int = 8, seed: int = 0) -> Path:
    """Save a 3-row grid: ``n`` originals (resized to the view size; all of them when the data has fewer),
    then view a, then view b."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not data.is_image:
        raise DataError("views can only be drawn for images")
    generator = torch.Generator().manual_seed(seed)
    n = min(n, len(data))
    rows = torch.randperm(len(data), generator=generator)[:n]
    batch = data.images[rows]
    augmenter = ImageAugmenter(augment)
    panels = [augmenter.eval_view(batch), augmenter(batch, generator), augmenter(batch, generator)]
    fig, axes = plt.subplots(3, n, figsize=(1.3 * n, 4.2), squeeze=False)
    for r, (title, images) in enumerate(zip(("original", "view a", "view b"), panels)):
        for c in range(n):
            image = images[c].permute(1, 2, 0).clamp(0, 1).numpy()
            ax = axes[r][c]
            ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_training_log(log_csv: str | Path, path: str | Path, x: str = "epoch") -> Path | None:
    """Loss parts and (where logged) NMI/ACC/ARI against ``x`` (``epoch`` or ``wall_seconds``); nothing
    if the log is empty."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_csv) as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return None
    xs = [float(r[x]) for r in rows]
    label = "wall time (s)" if x == "wall_seconds" else x
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    loss_keys = [k for k in rows[0] if k not in ("epoch", "lr", "nmi", "acc", "ari", "wall_seconds")]
    for key in loss_keys:
        points = [(x_value, float(r[key])) for x_value, r in zip(xs, rows) if r.get(key)]
        if points:
            left.plot(*zip(*points), label=key)
    left.set_xlabel(label)
    left.set_title("loss")
    left.legend()
    for key in ("nmi", "acc", "ari"):
        points = [(x_value, float(r[key])) for x_value, r in zip(xs, rows) if r.get(key)]
        if points:
            right.plot(*zip(*points), marker="o", label=key.upper())
    right.set_xlabel(label)
    right.set_ylim(0, 1)
    right.set_title("clustering quality")
    if right.lines:
        right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
