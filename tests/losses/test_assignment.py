import math

import torch
import torch.nn.functional as F

from contraclust.losses import (
    assignment_feature_loss, assignment_probability_loss, entropy_regulariser, nt_xent, squared_mass_regulariser,
)


def slow_cross_view(a, b, t, cosine=True):
    n = a.shape[0]
    total = 0.0
    for i in range(n):
        sims = [float(F.cosine_similarity(a[i], b[j], dim=0) if cosine else a[i] @ b[j]) / t for j in range(n)]
        total += -math.log(math.exp(sims[i]) / sum(math.exp(s) for s in sims))
    return total / n


def test_assignment_feature_matches_reference_cosine_and_dot():
    a, b = torch.randn(6, 4), torch.randn(6, 4)
    assert abs(assignment_feature_loss(a, b, 0.5).item() - slow_cross_view(a, b, 0.5)) < 1e-5
    assert abs(assignment_feature_loss(a, b, 0.5, "dot").item() - slow_cross_view(a, b, 0.5, False)) < 1e-4


def test_assignment_feature_symmetric_and_nt_xent_forms():
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    sym = assignment_feature_loss(a, b, 0.5, symmetric=True).item()
    assert abs(sym - 0.5 * (slow_cross_view(a, b, 0.5) + slow_cross_view(b, a, 0.5))) < 1e-5
    nt = assignment_feature_loss(a, b, 0.5, negatives="nt_xent")
    assert torch.allclose(nt, nt_xent(F.normalize(a, dim=1), F.normalize(b, dim=1), 0.5))


def test_assignment_probability_on_columns():
    pa, pb = torch.softmax(torch.randn(20, 4), 1), torch.softmax(torch.randn(20, 4), 1)
    assert abs(assignment_probability_loss(pa, pb, 1.0).item() - slow_cross_view(pa.T, pb.T, 1.0)) < 1e-5


def test_assignment_probability_hand_computed():
    # K=2 one-hot columns that agree: cos(q_k, q'_k)=1, cos(q_k, q'_l)=0 -> -log(e / (e + 1))
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert abs(assignment_probability_loss(p, p.clone()).item() + math.log(math.e / (math.e + 1))) < 1e-6


def test_regularisers_hand_computed():
    uniform = torch.full((8, 4), 0.25)
    assert abs(squared_mass_regulariser(uniform).item() - 4 * (8 / 4) ** 2 / 8) < 1e-6  # N/K = 2
    collapsed = torch.tensor([[1.0, 0, 0, 0]] * 8)
    assert abs(squared_mass_regulariser(collapsed).item() - 8.0) < 1e-6  # N
    assert abs(entropy_regulariser(uniform).item()) < 1e-6
    assert abs(entropy_regulariser(collapsed).item() - math.log(4)) < 1e-5


def test_assignment_feature_hand_computed():
    # rows e1, e2 in both views, cosine, t = 0.5: positive cos 1, one negative cos 0 -> -log(e^2 / (e^2 + 1))
    z = torch.eye(2)
    assert abs(assignment_feature_loss(z, z.clone(), 0.5).item() + math.log(math.exp(2) / (math.exp(2) + 1))) < 1e-6
