import math

import torch
import torch.nn.functional as F

from contraclust.losses import nt_xent


def slow_nt_xent(a, b, t):
    """Row by row, as written in CC's official InstanceLoss: logits [positive | 2N-2 negatives]."""
    z = torch.cat([a, b])
    n2 = z.shape[0]
    total = 0.0
    for i in range(n2):
        twin = (i + n2 // 2) % n2
        pos = math.exp(float(z[i] @ z[twin]) / t)
        negs = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n2) if k not in (i, twin))
        total += -math.log(pos / (pos + negs))
    return total / n2


def test_hand_computed_two_samples():
    # N=1: each row has its twin only and no negatives, so the loss is exactly 0.
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert nt_xent(a, b, 0.5).item() == 0.0


def test_hand_computed_orthogonal_pairs():
    # N=2, unit vectors: a0=b0=e1, a1=b1=e2. For every row: positive sim 1, negatives sims 0 and 0.
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    a, b = torch.stack([e1, e2]), torch.stack([e1, e2])
    t = 0.5
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2))
    assert abs(nt_xent(a, b, t).item() - expected) < 1e-6


def test_matches_slow_reference():
    a = F.normalize(torch.randn(6, 5), dim=1)
    b = F.normalize(torch.randn(6, 5), dim=1)
    for t in (0.5, 1.0, 0.2):
        assert abs(nt_xent(a, b, t).item() - slow_nt_xent(a, b, t)) < 1e-5


def test_symmetric_in_views_and_gradients_flow():
    a = F.normalize(torch.randn(4, 3), dim=1).requires_grad_()
    b = F.normalize(torch.randn(4, 3), dim=1)
    loss = nt_xent(a, b)
    assert torch.allclose(loss, nt_xent(b, a.detach()), atol=1e-6)
    loss.backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
