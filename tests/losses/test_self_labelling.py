"""Self-labelling's loss (SCAN eq. 3, TCL's boosting): pseudo-labels only from confident clean predictions,
at most ceil(B/K gamma) per cluster, and class-balanced weights, checked against hand-computed cases."""
import math

import torch

from contraclust.losses.self_labelling import balanced_weights, confident_rows, self_labelling_loss


def test_only_rows_above_the_threshold_give_pseudo_labels():
    clean = torch.tensor([[0.995, 0.005], [0.98, 0.02], [0.001, 0.999], [0.5, 0.5]])
    selected, labels = confident_rows(clean, 0.99)
    assert selected.tolist() == [True, False, True, False] and labels.tolist()[:3] == [0, 0, 1]
    strong = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.2, 0.8], [0.5, 0.5]])
    loss, share = self_labelling_loss(clean, strong, 0.99, balanced=False)
    assert math.isclose(loss.item(), -(math.log(0.9) + math.log(0.8)) / 2, rel_tol=1e-6)  # rows 0 and 2 only
    assert share.item() == 0.5


def test_per_cluster_share_keeps_the_most_confident_of_each_cluster():
    # B = 6, K = 2, gamma = 0.5: at most ceil(6 / 2 * 0.5) = 2 per cluster, the surest first
    clean = torch.tensor([[0.991, 0.009], [0.999, 0.001], [0.995, 0.005], [0.002, 0.998], [0.3, 0.7], [0.0, 1.0]])
    selected, _ = confident_rows(clean, 0.99, per_cluster_share=0.5)
    assert selected.tolist() == [False, True, True, True, False, True]


def test_balanced_weights_are_the_inverse_frequency_among_the_selected():
    labels = torch.tensor([0, 0, 0, 1, 2, 2])
    selected = torch.tensor([True, True, True, True, False, False])
    weights = balanced_weights(labels, selected, 4)
    assert torch.allclose(weights, torch.tensor([4 / 3, 4.0, 0.0, 0.0]))  # |S| / n_c; none selected: 0
    clean = torch.tensor([[1.0, 0.0]] * 3 + [[0.0, 1.0]])
    strong = torch.tensor([[0.5, 0.5]] * 3 + [[0.9, 0.1]])
    loss, _ = self_labelling_loss(clean, strong, 0.5, balanced=True)
    # weights 4/3 (class 0, three rows) and 4 (class 1): (3 * 4/3 * -log 0.5 + 4 * -log 0.1) / (3 * 4/3 + 4)
    expected = (4 * -math.log(0.5) + 4 * -math.log(0.1)) / 8
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)


def test_no_confident_row_gives_zero_and_the_clean_view_gets_no_gradient():
    clean = torch.full((4, 3), 1 / 3, requires_grad=True)
    strong = torch.softmax(torch.randn(4, 3, requires_grad=True), dim=1)
    loss, share = self_labelling_loss(clean, strong, 0.99)
    assert loss.item() == 0.0 and share.item() == 0.0 and torch.isfinite(loss)
    confident = torch.tensor([[0.999, 0.0005, 0.0005]] * 4, requires_grad=True)
    logits = torch.randn(4, 3, requires_grad=True)
    loss, _ = self_labelling_loss(confident, torch.softmax(logits, dim=1), 0.99)
    loss.backward()
    assert confident.grad is None and logits.grad.abs().sum() > 0
