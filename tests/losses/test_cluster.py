import math

import torch
import torch.nn.functional as F

from contraclust.losses import cluster_contrast, marginal_entropy_penalty, nt_xent


def slow_cluster_contrast(ca, cb, t):
    """CC's ClusterLoss contrast with torch's CosineSimilarity, column by column."""
    columns = torch.cat([ca.T, cb.T])
    k2 = columns.shape[0]
    total = 0.0
    for i in range(k2):
        twin = (i + k2 // 2) % k2
        sims = [float(F.cosine_similarity(columns[i], columns[j], dim=0)) / t for j in range(k2)]
        pos = math.exp(sims[twin])
        negs = sum(math.exp(s) for j, s in enumerate(sims) if j not in (i, twin))
        total += -math.log(pos / (pos + negs))
    return total / k2


def test_cluster_contrast_matches_slow_reference():
    ca, cb = torch.softmax(torch.randn(16, 4), 1), torch.softmax(torch.randn(16, 4), 1)
    for t in (1.0, 0.5):
        assert abs(cluster_contrast(ca, cb, t).item() - slow_cluster_contrast(ca, cb, t)) < 1e-5


def test_cluster_contrast_is_nt_xent_on_normalised_columns():
    ca, cb = torch.softmax(torch.randn(8, 3), 1), torch.softmax(torch.randn(8, 3), 1)
    expected = nt_xent(F.normalize(ca.T, dim=1), F.normalize(cb.T, dim=1), 1.0)
    assert torch.allclose(cluster_contrast(ca, cb, 1.0), expected)


def test_cluster_contrast_hand_computed_one_hot():
    # Two clusters, hard one-hot assignments that agree across views: columns e.g. [1,0],[0,1]
    # are orthogonal; each column: positive cosine 1, two negatives with cosine 0.
    ca = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    expected = -math.log(math.e / (math.e + 2))
    assert abs(cluster_contrast(ca, ca.clone(), 1.0).item() - expected) < 1e-6


def test_entropy_penalty_hand_computed():
    k = 4
    uniform = torch.full((10, k), 1 / k)
    assert abs(marginal_entropy_penalty(uniform).item()) < 1e-6
    # mean assignment p = (0.5, 0.5, 0, 0) up to rows: use rows that avoid log 0 with tiny mass
    rows = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]]) * 0.999 + 0.001 / 4
    p = rows.mean(0)
    expected = math.log(k) + float((p * p.log()).sum())
    assert abs(marginal_entropy_penalty(rows).item() - expected) < 1e-6
    assert 0 < expected < math.log(k)


def test_entropy_penalty_collapse_is_log_k():
    collapsed = torch.zeros(5, 3)
    collapsed[:, 0] = 1.0
    collapsed = collapsed * (1 - 1e-7) + 1e-7 / 3
    assert abs(marginal_entropy_penalty(collapsed).item() - math.log(3)) < 1e-4
