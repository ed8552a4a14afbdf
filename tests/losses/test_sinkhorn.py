import math

import torch
import torch.nn.functional as F

from contraclust.losses import nt_xent, sinkhorn, split_contrastive_loss
from contraclust.losses.split_representation import split_representation


def slow_sinkhorn(logits, eps, n_iter):
    """SwAV's plain (non-log) Sinkhorn on the transposed K x B matrix, in float64."""
    q = torch.exp(logits.double() / eps).T
    q /= q.sum()
    k, b = q.shape
    for _ in range(n_iter):
        q /= q.sum(dim=1, keepdim=True)
        q /= k
        q /= q.sum(dim=0, keepdim=True)
        q /= b
    return (q * b).T


def test_matches_plain_sinkhorn():
    logits = torch.randn(32, 5)
    assert torch.allclose(sinkhorn(logits, 0.5, 3).double(), slow_sinkhorn(logits, 0.5, 3), atol=1e-5)


def test_equipartition_rows_and_columns():
    logits = torch.randn(64, 8) * 3
    q = sinkhorn(logits, epsilon=0.5, n_iter=50)
    assert torch.allclose(q.sum(dim=1), torch.ones(64), atol=1e-5)
    assert torch.allclose(q.sum(dim=0), torch.full((8,), 64 / 8), atol=1e-3)


def test_hand_computed_two_by_two():
    # S = exp(L/eps) = [[2, 1], [1, 2]] is symmetric, so one scaling already balances it:
    # Q = [[2/3, 1/3], [1/3, 2/3]].
    logits = torch.log(torch.tensor([[2.0, 1.0], [1.0, 2.0]]))
    q = sinkhorn(logits, epsilon=1.0, n_iter=1)
    assert torch.allclose(q, torch.tensor([[2 / 3, 1 / 3], [1 / 3, 2 / 3]]), atol=1e-6)


def test_stable_in_bf16_and_for_large_k():
    logits = (torch.randn(256, 1000) * 20).to(torch.bfloat16)
    q = sinkhorn(logits, epsilon=0.05, n_iter=3)
    assert q.dtype == torch.float32 and torch.isfinite(q).all()
    assert torch.allclose(q.sum(dim=1), torch.ones(256), atol=1e-4)
    queue = torch.randn(4096, 1000)
    q = sinkhorn(logits, 0.05, 10, extra_logits=queue)
    assert q.shape == (256, 1000) and torch.isfinite(q).all()


def test_gradient_flows_through_iterations():
    logits = torch.randn(16, 4, requires_grad=True)
    (sinkhorn(logits, 0.5, 3)[:, 0].sum()).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_split_loss_is_weighted_instance_infonce():
    """exp(z_i.z_j/t) = exp(a^2 c_i.c_j/t) exp(b^2 u_i.u_j/t): check the identity row by row."""
    n, k, t, alpha = 5, 3, 0.5, 1.3
    c_a, c_b = torch.softmax(torch.randn(n, k), 1), torch.softmax(torch.randn(n, k), 1)
    v_a, v_b = torch.randn(n, 4), torch.randn(n, 4)
    loss = split_contrastive_loss(c_a, v_a, c_b, v_b, t, alpha)
    c, u = torch.cat([c_a, c_b]), F.normalize(torch.cat([v_a, v_b]), dim=1)
    weights = torch.exp(alpha**2 * (c @ c.T) / t)
    scores = weights * torch.exp((u @ u.T) / t)
    total = 0.0
    for i in range(2 * n):
        twin = (i + n) % (2 * n)
        total += -math.log(scores[i, twin] / sum(scores[i, j] for j in range(2 * n) if j != i))
    assert abs(loss.item() - total / (2 * n)) < 1e-5
    # equal categorical parts: the weights cancel and the loss is plain instance NT-Xent on u
    same = torch.full((n, k), 1 / k)
    assert torch.allclose(split_contrastive_loss(same, v_a, same, v_b, t),
                          nt_xent(F.normalize(v_a, dim=1), F.normalize(v_b, dim=1), t), atol=1e-6)
    assert split_representation(c_a, v_a, normalise=True).norm(dim=1).allclose(torch.ones(n))


def test_tolerance_stops_once_balanced():
    logits = torch.randn(200, 5) * 0.1
    q = sinkhorn(logits, 0.05, 500, tolerance=0.01)
    assert ((q.sum(0) / 40 - 1).abs().max()) <= 0.011


def test_split_loss_hand_computed():
    # c = one-hot clusters, u = orthogonal unit vectors, alpha = beta = 1, t = 1: each row's twin has
    # z.z = 1 + 1 = 2 and both negatives have z.z = 0, so the loss is -log(e^2 / (e^2 + 2)).
    eye = torch.eye(2)
    loss = split_contrastive_loss(eye, eye, eye.clone(), eye.clone(), temperature=1.0)
    assert abs(loss.item() + math.log(math.exp(2) / (math.exp(2) + 2))) < 1e-6


def test_a_queue_still_filling_counts_only_its_filled_rows_and_reads_nothing_back():
    """CLC hands Sinkhorn its whole queue and the count of filled rows as a tensor (no host sync in the
    step): the result and its gradient equal those with the filled rows sliced off, and rows of zeros
    (or garbage) beyond the count take no mass."""
    logits = torch.randn(12, 6, requires_grad=True)
    queue = torch.randn(20, 6)
    for filled in (0, 7, 20):
        garbage = queue.clone()
        garbage[filled:] = 1e3
        masked = sinkhorn(logits, 0.5, 3, garbage, extra_rows=torch.tensor(filled))
        sliced = sinkhorn(logits, 0.5, 3, queue[:filled])
        assert torch.allclose(masked, sliced, atol=1e-5), filled
        grad_masked, = torch.autograd.grad(masked[:, 0].sum(), logits)
        grad_sliced, = torch.autograd.grad(sliced[:, 0].sum(), logits)
        assert torch.isfinite(grad_masked).all() and torch.allclose(grad_masked, grad_sliced, atol=1e-5), filled
