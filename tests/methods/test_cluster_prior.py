"""The cluster prior shared by the methods: uniform (the papers'), none, or estimated with a floor."""
import torch

from contraclust.config import ModelConfig
from contraclust.methods import get_method
from contraclust.methods.prior import ClusterPrior
from contraclust.models import build_backbone


def test_estimated_prior_follows_the_assignments_with_a_floor():
    prior = ClusterPrior(4, "estimated", 1.0, floor=0.2, momentum=0.5)
    assert torch.allclose(prior.target(), torch.full((4,), 0.25))
    skewed = torch.tensor([[1.0, 0, 0, 0]]).repeat(8, 1)
    for _ in range(20):
        prior.observe(skewed)
    target = prior.target()
    assert target[0] > 0.8 and (target[1:] > 0.04).all() and abs(target.sum().item() - 1) < 1e-6  # 0.2 / 4 floor
    prior.eval()
    before = prior.estimate.clone()
    prior.observe(torch.eye(4))
    assert torch.equal(before, prior.estimate)  # evaluation never moves it
    assert "estimate" in prior.state_dict() and not ClusterPrior(4, "uniform", 1.0, 0.1, 0.9).state_dict()
    assert ClusterPrior(4, "none", 1.0, 0.1, 0.9).weight == 0 and ClusterPrior(4, "uniform", 1.0, 0.1, 0.9).target() is None


def build(method, **options):
    cls = get_method(method)
    model_cfg = ModelConfig(backbone="small_cnn", width=8, head_hidden=16, feature_dim=8)
    return cls(build_backbone(model_cfg, (1, 16, 16)), 5, cls.Options(**options), model_cfg)


def test_each_method_uses_its_balance_term_only_when_asked():
    torch.manual_seed(0)
    views = torch.rand(12, 1, 16, 16), torch.rand(12, 1, 16, 16)
    for method, part in (("cc", "entropy"), ("drc", "regulariser")):
        uniform, free = build(method), build(method, cluster_prior="none")
        free.load_state_dict(uniform.state_dict())
        total_u, parts_u = uniform.loss(uniform(*views))
        total_n, parts_n = free.loss(free(*views))
        weight = 1.0 if method == "cc" else 0.5
        assert torch.allclose(total_u - total_n, weight * parts_u[part], atol=1e-5), method
        estimated = build(method, cluster_prior="estimated")
        estimated.loss(estimated(*views))
        assert not torch.allclose(estimated.prior.estimate, torch.full((5,), 0.2))  # it learned from the batch
    clc = build("clc", cluster_prior="none")
    probs = torch.rand(30, 5).softmax(1)
    assert torch.equal(clc.readout(probs), probs)  # no balance: each sample's own argmax
