"""Nearest-neighbour positives for feature vectors (SCAN, TEMI): each sample's k nearest neighbours by
cosine similarity, found once on the device, and a second view that is, with some probability, one of them
instead of the sample itself."""
from __future__ import annotations

import torch
import torch.nn.functional as F

EXACT_LIMIT = 100_000  # rows up to which the exact, batched search is used even when FAISS is installed


@torch.no_grad()
def nearest_neighbours(features: torch.Tensor, k: int, batch_size: int = 2048) -> torch.Tensor:
    """(N, k) indices of each row's k most cosine-similar other rows: exact and batched on the features'
    device, or FAISS (inner product on normalised rows) for more than ``EXACT_LIMIT`` rows when installed."""
    n = features.shape[0]
    k = min(k, n - 1)
    unit = F.normalize(features.float(), dim=1)
    if n > EXACT_LIMIT:
        try:
            import faiss

            index = faiss.IndexFlatIP(unit.shape[1])
            points = unit.cpu().numpy()
            index.add(points)
            _, found = index.search(points, k + 1)
            return torch.from_numpy(found[:, 1:]).long().to(features.device)
        except ImportError:
            pass
    chunks = []
    for start in range(0, n, batch_size):
        similarity = unit[start: start + batch_size] @ unit.T
        rows = torch.arange(start, min(start + batch_size, n), device=features.device)
        similarity[rows - start, rows] = -float("inf")  # not itself
        chunks.append(similarity.topk(k, dim=1).indices)
    return torch.cat(chunks)


class NeighbourPartner:
    """Picks the sample behind each row's second view: itself, or with probability ``p`` a random one of
    its k nearest neighbours."""

    def __init__(self, neighbours: torch.Tensor, p: float):
        self.neighbours = neighbours
        self.p = p

    def pick(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        k = self.neighbours.shape[1]
        which = torch.randint(0, k, rows.shape, generator=generator, device=rows.device)
        swap = torch.rand(rows.shape, generator=generator, device=rows.device) < self.p
        return torch.where(swap, self.neighbours[rows, which], rows)
