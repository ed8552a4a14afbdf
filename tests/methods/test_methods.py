import pytest
import torch

from contraclust.config import ModelConfig
from contraclust.methods import METHODS, get_method
from contraclust.models import SmallCNN
from contraclust.errors import ConfigError


def build(name, k=4, **options):
    cls = get_method(name)
    return cls(SmallCNN(1, 8), k, cls.Options(**options), ModelConfig(feature_dim=16, head_hidden=32))


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_trains_a_step_and_reads_out(name):
    torch.manual_seed(0)
    # at random init every embedding is within C3's zeta of every other, so its loss is exactly 0:
    # one reason C3 starts from CC. zeta = 2 keeps only self and twin as positives.
    method = build(name, **({"zeta": 2.0} if name == "c3" else {}))
    x_a, x_b = torch.rand(12, 1, 16, 16), torch.rand(12, 1, 16, 16)
    outputs = method(x_a, x_b)
    assert all(v.shape[0] == 12 for v in outputs.values())
    loss, parts = method.loss(outputs)
    assert loss.ndim == 0 and torch.isfinite(loss) and parts
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.backbone.parameters())
    method.eval()
    probs = method.cluster_probabilities(x_a)
    assert probs.shape == (12, 4) and torch.allclose(probs.sum(1), torch.ones(12), atol=1e-5)


def test_registry_and_unknown_method():
    assert list(METHODS) == ["cc", "c3", "drc", "clc"]
    assert all(cls.summary for cls in METHODS.values())
    with pytest.raises(ConfigError, match="unknown method"):
        get_method("dec")


def test_c3_alone_leaves_cluster_head_without_gradient():
    method = build("c3")
    loss, parts = method.loss(method(torch.rand(8, 1, 16, 16), torch.rand(8, 1, 16, 16)))
    loss.backward()
    assert set(parts) == {"c3"}
    assert all(p.grad is None for p in method.cluster_head.parameters())
    kept = build("c3", keep_cc_losses=True)
    _, parts = kept.loss(kept(torch.rand(8, 1, 16, 16), torch.rand(8, 1, 16, 16)))
    assert set(parts) == {"c3", "instance", "cluster", "entropy"}


def test_c3_loads_cc_weights():
    cc, c3 = build("cc"), build("c3")
    c3.load_initial_state(cc.state_dict())
    for key, value in cc.state_dict().items():
        assert torch.equal(value, c3.state_dict()[key])


def test_cc_with_several_heads_trains_each_and_reads_out_with_the_lowest_loss():
    from contraclust.losses import cluster_contrast, marginal_entropy_penalty, nt_xent

    torch.manual_seed(0)
    method = build("cc", cluster_heads=3)
    outputs = method(torch.rand(16, 1, 16, 16), torch.rand(16, 1, 16, 16))
    assert outputs["c_a"].shape == (16, 3, 4)
    loss, parts = method.loss(outputs)
    per_head = [cluster_contrast(outputs["c_a"][:, h], outputs["c_b"][:, h])  # the 2-D losses, one head at a time
                + marginal_entropy_penalty(outputs["c_a"][:, h]) + marginal_entropy_penalty(outputs["c_b"][:, h])
                for h in range(3)]
    expected = nt_xent(outputs["z_a"], outputs["z_b"], 0.5) + torch.stack(per_head).mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    assert torch.allclose(method.head_losses, torch.stack(per_head).detach(), atol=1e-6)  # the first update sets them
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in method.cluster_head.parameters())
    method.head_losses.copy_(torch.tensor([3.0, 1.0, 2.0]))
    method.eval()
    x = torch.rand(5, 1, 16, 16)
    assert torch.equal(method.cluster_probabilities(x), method.cluster_head(method.backbone(x))[:, 1])
    c3 = build("c3", cluster_heads=3)
    c3.load_initial_state(method.state_dict())  # C3 reads out with the head the CC stage chose
    c3.eval()
    assert torch.equal(c3.cluster_probabilities(x), method.cluster_probabilities(x))
    with pytest.raises(ConfigError, match="cluster_heads"):
        build("cc", cluster_heads=0)


def test_stacked_heads_compute_what_separate_heads_would():
    from contraclust.models import ClusterHeads

    heads = ClusterHeads(6, 4, 5, n_heads=3)
    h = torch.randn(7, 6)
    for i in range(3):
        hidden = torch.relu(h @ heads.weight1[i] + heads.bias1[i])
        expected = torch.softmax(hidden @ heads.weight2[i] + heads.bias2[i], dim=1)
        assert torch.allclose(heads(h)[:, i], expected, atol=1e-6)


def test_clc_queue_fills_and_balances_large_k():
    method = build("clc", k=50, sinkhorn_queue=64)
    for _ in range(3):
        method.loss(method(torch.rand(16, 1, 16, 16), torch.rand(16, 1, 16, 16)))
    assert int(method.queue_filled) == 48
    method.loss(method(torch.rand(32, 1, 16, 16), torch.rand(32, 1, 16, 16)))
    assert int(method.queue_filled) == 64


def test_views_concat_option_matches_shapes():
    method = build("cc", views_forward="concat")
    outputs = method(torch.rand(6, 1, 16, 16), torch.rand(6, 1, 16, 16))
    assert outputs["z_a"].shape == (6, 16)


def test_clc_sinkhorn_readout_balances_a_skewed_set():
    method = build("clc", k=4)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(400, 4, generator=g) * 0.02
    logits[:, 0] += 0.05  # every sample leans to cluster 0
    probs = torch.softmax(logits / method.options.sinkhorn_epsilon, dim=1)
    assert torch.bincount(probs.argmax(1), minlength=4).max() > 200
    balanced = method.readout(probs)
    sizes = torch.bincount(balanced.argmax(1), minlength=4)
    assert sizes.max() <= 2 * sizes.min()
    assert torch.allclose(balanced.sum(1), torch.ones(400), atol=1e-5)
    method.options.readout = "argmax"
    assert torch.equal(method.readout(probs), probs)


def test_clc_prototype_logits_are_bias_free_cosines():
    method = build("clc", k=3)
    logits = method.cluster_head(torch.randn(5, method.backbone.out_dim))
    assert logits.abs().max() <= 1 + 1e-5
    assert not any(name.endswith("bias") for name, _ in method.cluster_head.named_parameters()
                   if not name.startswith("projection"))


def test_clc_scales_to_a_thousand_clusters():
    """K = 1000 with a batch of 32: memory is O(B x K) (no K x K matrix), the queue balances the marginals."""
    method = build("clc", k=1000, sinkhorn_queue=256)
    x = torch.rand(32, 1, 16, 16)
    for _ in range(2):
        loss, _ = method.loss(method(x, x.flip(-1)))
        assert torch.isfinite(loss)
    loss.backward()
    assert method.cluster_head.prototypes.grad.shape == (1000, 16)


def test_clc_prototype_logits_are_fp32_under_bf16_autocast():
    """The cosines are divided by epsilon (0.05) before Sinkhorn and the softmax: in bf16 (3 significant
    digits) that is an error of about 0.1 in a logit, so they are computed in fp32 whatever the autocast."""
    from contraclust.methods.clc import PrototypeLogits

    torch.manual_seed(0)
    head = PrototypeLogits(32, 64, 16, 10)
    h = torch.randn(8, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(h)
        projected = head.projection(h)  # the projection itself may run in bf16
    assert logits.dtype == torch.float32
    prototypes = torch.nn.functional.normalize(head.prototypes, dim=1)
    fp32_product = torch.nn.functional.normalize(projected.float(), dim=1) @ prototypes.T
    bf16_product = (torch.nn.functional.normalize(projected.float(), dim=1).bfloat16() @ prototypes.T.bfloat16()).float()
    assert torch.allclose(logits, fp32_product, atol=1e-6)
    assert (bf16_product - fp32_product).abs().max() / 0.05 > 0.01  # what bf16 would have cost at 1/epsilon
