"""``suggest-k``: train one backbone, then cluster heads for every K in a range on its frozen features
(``multi_k``), measure per K the signals that need no labels, and recommend a K with the reason.

Signals per K, from the heads on the features of the un-augmented data (and of two augmented views):
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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contraclust.config import RunConfig
from contraclust.console import say
from contraclust.data import Samples
from contraclust.errors import ConfigError
from contraclust.methods.c3 import C3Options
from contraclust.methods.cc import CCOptions
from contraclust.metrics import evaluate_clustering
from contraclust.models import build_backbone
from contraclust.recipes.auto import c3_stage
from contraclust.run import Run, Stage
from contraclust.selection.multi_k import (FeatureBank, InstanceContrast, MultiKHeads, build_feature_bank,
                                            train_heads)

SIGNALS = ("confidence", "entropy", "size_spread", "used", "view_agreement", "stability", "silhouette")
SILHOUETTE_SAMPLE = 2000
MEASURE_SECONDS = 5.0  # kept at the end of a budget for measuring the signals and writing the files


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


C3_SHARE = 0.15  # of a time budget, for the cross-instance stage (C3's share in the auto recipe)
HEAD_SHARE = 0.15  # of a time budget, kept for embedding the views and training the heads
HEAD_EPOCHS = 200  # the most head epochs (with a budget the heads stop at its end; without one they run these)
BANK_VIEWS = 8


def suggest_k(data: Samples, ks: list[int], config: RunConfig, device, replicas: int = 2,
              started_at: float | None = None, progress: bool = True, head_epochs: int = HEAD_EPOCHS,
              folder: Path | None = None) -> SuggestKResult:
    """Train ``config``'s backbone (its model, views and schedule) with CC's instance loss, then with C3's
    cross-instance loss, as the two stages of one Run (in ``folder``, which it holds, when given), then heads
    for every K in ``ks`` on its frozen features (``multi_k``), measure the signals per K and rank them."""
    if replicas < 2:
        raise ConfigError("suggest-k needs at least 2 heads per K (their agreement is the stability signal)")
    began = time.monotonic() if started_at is None else started_at  # both training stages count from here
    config = copy.deepcopy(config)
    config.method, config.n_clusters = "cc", max(ks)
    options = config.method_options
    config.method_options = CCOptions(**{k: v for k, v in vars(options).items() if k in CCOptions.__dataclass_fields__})
    config.train.eval_every = 0
    budget = config.train.budget_seconds
    config.train.after_seconds = (C3_SHARE + HEAD_SHARE) * budget
    c3_config = copy.deepcopy(config)
    c3_stage(c3_config)
    c3_config.train.after_seconds = HEAD_SHARE * budget
    if not budget:
        c3_config.train.epochs = max(1, config.train.epochs // 5)

    def network(zeta: float | None = None):
        return lambda: InstanceContrast(build_backbone(config.model, data.sample_shape), config.method_options,
                                        config.model, zeta)

    say(f"suggest-k: a backbone trained by instance contrast, then C3's cross-instance contrast, then {replicas} "
        f"cluster heads for each K in {ks[0]}..{ks[-1]} ({len(ks)} values) on its frozen features")
    stages = [Stage("instance contrast", config, None, network()),
              Stage("cross-instance contrast", c3_config, None, network(C3Options().zeta))]
    run = Run.start(config, data, folder, device=device, started_at=began, stages=stages, announce=False)
    run.fit()
    trainer = run.trainer
    bank = build_feature_bank(trainer, BANK_VIEWS, progress)
    heads = MultiKHeads(bank.clean.shape[1], ks, replicas, config.model.head_hidden)
    deadline = began + budget - MEASURE_SECONDS if budget else None
    head_epochs_run = train_heads(heads, bank, config.method_options, max(config.train.batch_size, 256), head_epochs,
                                  deadline, config.train.seed, progress)
    signals = measure_signals(heads, bank, data.labels)
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
                          {"epochs": run.stage_epochs[0], "c3_epochs": run.stage_epochs[1], "head_epochs": head_epochs_run,
                           "wall_seconds": round(time.monotonic() - began, 1),
                           "replicas": replicas, "views": len(bank.views)})


@torch.no_grad()
def measure_signals(heads: MultiKHeads, bank: FeatureBank, labels: np.ndarray | None) -> dict[int, dict]:
    """The signals of every K (module docstring) from the trained ``heads`` on the ``bank``'s features."""
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    n = len(bank.clean)
    probabilities: list[list[torch.Tensor]] = [[] for _ in heads.ks]
    agreements = torch.zeros(len(heads.ks))
    for start in range(0, n, 1024):
        rows = slice(start, start + 1024)
        clean = heads(bank.clean[rows])
        view_a, view_b = heads(bank.views[0, rows]), heads(bank.views[1, rows])
        for i in range(len(heads.ks)):
            probabilities[i].append(clean[i].float().cpu())
            agreements[i] += (view_a[i].argmax(-1) == view_b[i].argmax(-1)).float().sum().cpu()
    embedding = bank.clean.cpu().numpy()
    sample = np.random.default_rng(0).choice(n, min(n, SILHOUETTE_SAMPLE), replace=False)
    out: dict[int, dict] = {}
    for i, k in enumerate(heads.ks):
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
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows))
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
