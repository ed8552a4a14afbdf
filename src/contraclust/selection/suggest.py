"""``suggest-k``: train one backbone with cluster heads for every K in a range, measure per K the signals
that need no labels, and recommend a K with the reason.

Signals per K, from the trained model on the un-augmented data (and two augmented views):
- ``confidence``: the mean probability of each sample's cluster;
- ``entropy``: the mean entropy of each sample's assignment, divided by log K (0 sure, 1 undecided);
- ``size_spread``: largest / smallest cluster, and ``used`` clusters (non-empty);
- ``view_agreement``: how often two augmented views of a sample fall in the same cluster;
- ``stability``: ARI between the partitions of the K's two heads, trained from different starts;
- ``silhouette``: of the partition on the backbone's L2-normalised features (cosine);
- with labels, NMI/ACC/ARI of the partition beside them (never used for the recommendation).

The recommendation ranks the K by ``stability`` x ``view_agreement`` x ``silhouette`` (negative
silhouettes count as 0): a K that matches the data's structure is found again by a second head
started elsewhere, survives augmentation, and separates the learned features into compact groups;
a K above it splits classes arbitrarily (the heads disagree, views cross the arbitrary borders, and
the split halves lie close together), a K below it merges them in arbitrary ways (the heads disagree
on which to merge, and the merged groups are loose).
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contraclust.config import RunConfig
from contraclust.console import progress_iter, say
from contraclust.data import Samples
from contraclust.errors import ConfigError
from contraclust.methods.cc import CCOptions
from contraclust.metrics import evaluate_clustering
from contraclust.models import build_backbone
from contraclust.selection.multi_k import MultiKCC

SIGNALS = ("confidence", "entropy", "size_spread", "used", "view_agreement", "stability", "silhouette")
SILHOUETTE_SAMPLE = 2000


@dataclass
class SuggestKResult:
    ks: list[int]
    signals: dict[int, dict[str, float]]
    scores: dict[int, float]
    ranking: list[int]
    recommended: int
    reason: str
    labelled: bool
    train: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["signals"] = {str(k): v for k, v in self.signals.items()}
        out["scores"] = {str(k): v for k, v in self.scores.items()}
        return out


def parse_k_range(text: str, n_samples: int | None = None) -> list[int]:
    """``2:30`` (2 to 30), ``2:30:2`` (every second), or ``5,10,20``; every K at least 2 (and below N)."""
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            ks = list(range(parts[0], parts[1] + 1, parts[2] if len(parts) == 3 else 1))
        else:
            ks = sorted({int(p) for p in text.split(",")})
    except ValueError:
        raise ConfigError(f"--range must be LOW:HIGH, LOW:HIGH:STEP or K1,K2,...; got {text!r}") from None
    if len(ks) < 2 or min(ks) < 2:
        raise ConfigError(f"--range {text!r} must give at least two K, each at least 2; it gives {ks}")
    if n_samples is not None and max(ks) > n_samples:
        raise ConfigError(f"--range {text!r} asks for K up to {max(ks)} but the data has {n_samples} samples")
    return ks


def suggest_k(data: Samples, ks: list[int], config: RunConfig, device, replicas: int = 2,
              started_at: float | None = None, progress: bool = True) -> SuggestKResult:
    """Train ``config`` (its model, views and schedule; CC's losses) with heads for every K in ``ks``,
    then measure the signals per K and rank them."""
    from contraclust.training.trainer import Trainer

    if replicas < 2:
        raise ConfigError("suggest-k needs at least 2 heads per K (their agreement is the stability signal)")
    config = copy.deepcopy(config)
    config.method, config.n_clusters = "cc", max(ks)
    options = config.method_options
    config.method_options = CCOptions(**{k: v for k, v in vars(options).items() if k in CCOptions.__dataclass_fields__})
    config.method_options.cluster_heads = 1
    config.train.eval_every = 0
    method = MultiKCC(build_backbone(config.model, data.sample_shape), ks, replicas, config.method_options,
                      config.model)
    trainer = Trainer(config, data, None, device, started_at=started_at, method=method)
    say(f"suggest-k: one backbone, {replicas} cluster heads for each K in {ks[0]}..{ks[-1]} ({len(ks)} values)")
    result = trainer.fit()
    signals = measure_signals(trainer, ks, data.labels, progress)
    scores = {k: signals[k]["stability"] * signals[k]["view_agreement"] * max(signals[k]["silhouette"], 0.0)
              for k in ks}
    ranking = sorted(ks, key=lambda k: -scores[k])
    best = ranking[0]
    runner = ranking[1]
    reason = (f"K={best} gives the most stable, augmentation-proof and compact partition: its heads agree with ARI "
              f"{signals[best]['stability']:.3f}, {100 * signals[best]['view_agreement']:.1f}% of the samples keep "
              f"their cluster across two views, and the silhouette of its clusters on the learned features is "
              f"{signals[best]['silhouette']:.3f} (score {scores[best]:.3f}; next K={runner}, {scores[runner]:.3f})")
    return SuggestKResult(ks, signals, scores, ranking, best, reason, data.labels is not None,
                          {"epochs": result.epochs, "wall_seconds": round(result.wall_seconds, 1),
                           "steps": trainer.schedule.total_steps, "replicas": replicas})


@torch.no_grad()
def measure_signals(trainer, ks: list[int], labels: np.ndarray | None, progress: bool = True) -> dict[int, dict]:
    """The signals of every K (module docstring) from the trained heads of ``trainer.method``."""
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    method = trainer.method
    method.eval()
    n, batch = len(trainer.samples), trainer.config.train.eval_batch_size
    probabilities: list[list[torch.Tensor]] = [[] for _ in ks]
    agreements = torch.zeros(len(ks))
    features = []
    for start in progress_iter(range(0, n, batch), "suggest-k: measuring", progress):
        rows = trainer.samples[start: start + batch]
        x = trainer.augment.eval_view(rows)
        if trainer.use_channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with trainer.autocast():
            heads, h = method.head_probabilities(x)
            view_a, view_b = trainer.make_views(rows)
            heads_a, _ = method.head_probabilities(view_a)
            heads_b, _ = method.head_probabilities(view_b)
        features.append(h.cpu())
        for i in range(len(ks)):
            probabilities[i].append(heads[i].cpu())
            agreements[i] += (heads_a[i].argmax(-1) == heads_b[i].argmax(-1)).float().sum().cpu()
    method.train()
    embedding = torch.cat(features).numpy()
    sample = np.random.default_rng(0).choice(n, min(n, SILHOUETTE_SAMPLE), replace=False)
    out: dict[int, dict] = {}
    for i, k in enumerate(ks):
        probs = torch.cat(probabilities[i]).numpy()  # (N, replicas, K)
        assigned = probs.argmax(-1)
        replicas = probs.shape[1]
        sizes = np.bincount(assigned[:, 0], minlength=k)
        used = int((sizes > 0).sum())
        entropy = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(-1).mean() / np.log(k)
        pairs = [(a, b) for a in range(replicas) for b in range(a + 1, replicas)]
        stability = float(np.mean([adjusted_rand_score(assigned[:, a], assigned[:, b]) for a, b in pairs]))
        silhouette = (float(silhouette_score(embedding[sample], assigned[sample, 0], metric="cosine"))
                      if len(np.unique(assigned[sample, 0])) > 1 else 0.0)
        row = {"confidence": float(probs.max(-1).mean()), "entropy": float(entropy),
               "size_spread": float(sizes.max() / max(sizes[sizes > 0].min(), 1)), "used": used,
               "view_agreement": float(agreements[i] / (n * replicas)), "stability": stability,
               "silhouette": silhouette}
        if labels is not None:
            row.update(evaluate_clustering(labels, assigned[:, 0]))
        out[k] = {key: round(value, 4) if isinstance(value, float) else value for key, value in row.items()}
    return out


def format_table(result: SuggestKResult) -> str:
    """One Markdown row per K: the signals, the score and its rank (with labels: NMI/ACC/ARI beside)."""
    metrics = ["nmi", "acc", "ari"] if result.labelled else []
    head = ["K", "score", "rank", *SIGNALS, *metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rank = {k: i + 1 for i, k in enumerate(result.ranking)}
    for k in result.ks:
        row = result.signals[k]
        cells = [str(k), f"{result.scores[k]:.3f}", str(rank[k])]
        cells += [f"{row[s]:.3f}" if isinstance(row[s], float) else str(row[s]) for s in SIGNALS]
        cells += [f"{row[m]:.3f}" for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_outputs(result: SuggestKResult, out_dir: Path) -> list[Path]:
    """suggest_k.json, suggest_k.md (the table and the recommendation) and suggest_k.png (the signals per K)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "suggest_k.json").write_text(json.dumps(result.to_dict(), indent=2))
    (out_dir / "suggest_k.md").write_text(f"# suggest-k\n\nrecommended K = {result.recommended}: {result.reason}\n\n"
                                          + format_table(result) + "\n")
    written = [out_dir / "suggest_k.json", out_dir / "suggest_k.md"]
    try:
        written.append(plot_signals(result, out_dir / "suggest_k.png"))
    except ImportError:
        pass
    return written


def plot_signals(result: SuggestKResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = result.ks
    panels = [("score (stability x agreement x silhouette)", [result.scores[k] for k in ks]),
              *[(name, [result.signals[k][name] for k in ks])
                for name in ("stability", "view_agreement", "silhouette", "confidence", "entropy", "size_spread")]]
    if result.labelled:
        panels.append(("with labels: NMI / ACC", [result.signals[k]["nmi"] for k in ks]))
    cols = 4
    fig, axes = plt.subplots((len(panels) + cols - 1) // cols, cols, figsize=(3.4 * cols, 2.6 * ((len(panels) + 3) // 4)))
    for ax, (name, values) in zip(axes.flat, panels):
        ax.plot(ks, values, marker="o", markersize=3)
        if name.startswith("with labels"):
            ax.plot(ks, [result.signals[k]["acc"] for k in ks], marker="o", markersize=3)
        ax.axvline(result.recommended, color="tab:red", linestyle="--", linewidth=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("K", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"suggest-k: recommended K = {result.recommended} (red line)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
