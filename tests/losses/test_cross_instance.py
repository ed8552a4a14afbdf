import math

import torch
import torch.nn.functional as F

from contraclust.losses import cross_instance_loss


def slow_c3(a, b, zeta, t):
    """Row by row from spec 2.3: positives = self, twin, and s_ij > zeta; sum in the log; divide by N."""
    z = torch.cat([a, b])
    n2 = z.shape[0]
    total = 0.0
    for i in range(n2):
        sims = [float(z[i] @ z[j]) for j in range(n2)]
        positives = [j for j in range(n2) if j in (i, (i + n2 // 2) % n2) or sims[j] > zeta]
        num = sum(math.exp(sims[j] / t) for j in positives)
        den = sum(math.exp(s / t) for s in sims)
        total += -math.log(num / den)
    return total / (n2 // 2)


def test_matches_slow_reference():
    a, b = F.normalize(torch.randn(7, 4), dim=1), F.normalize(torch.randn(7, 4), dim=1)
    for zeta, t in ((0.6, 1.0), (0.2, 0.5), (0.95, 1.0)):
        assert abs(cross_instance_loss(a, b, zeta, t).item() - slow_c3(a, b, zeta, t)) < 1e-5


def test_hand_computed_orthogonal():
    # N=2: a = b = [e1, e2]. Rows 0 and 2 are e1: positives {self, twin} (cos 1), negatives two rows at cos 0.
    e = torch.eye(2)
    expected = -math.log(2 * math.e / (2 * math.e + 2))
    assert abs(cross_instance_loss(e, e.clone(), 0.6).item() - 4 * expected / 2) < 1e-6


def test_threshold_below_minus_one_makes_everything_positive():
    a, b = F.normalize(torch.randn(5, 3), dim=1), F.normalize(torch.randn(5, 3), dim=1)
    assert abs(cross_instance_loss(a, b, zeta=-1.5).item()) < 1e-6


def test_unit_negative_weights_are_the_released_loss():
    a, b = F.normalize(torch.randn(6, 4), dim=1), F.normalize(torch.randn(6, 4), dim=1)
    ones = torch.ones(12, 12)
    assert torch.allclose(cross_instance_loss(a, b, 0.5), cross_instance_loss(a, b, 0.5, negative_weights=ones))
    heavier = cross_instance_loss(a, b, 0.5, negative_weights=2 * ones)
    assert heavier > cross_instance_loss(a, b, 0.5)
