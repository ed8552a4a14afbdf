"""Balance terms towards a cluster prior: each reduces to the published term for a uniform prior."""
import math

import pytest

import torch

from contraclust.losses import entropy_regulariser, marginal_entropy_penalty, sinkhorn, squared_mass_regulariser


def test_kl_to_a_uniform_prior_is_the_published_entropy_term():
    assign = torch.rand(16, 5).softmax(1)
    uniform = torch.full((5,), 0.2)
    assert torch.allclose(marginal_entropy_penalty(assign, uniform), marginal_entropy_penalty(assign), atol=1e-6)
    assert torch.allclose(entropy_regulariser(assign, uniform), entropy_regulariser(assign), atol=1e-6)
    assert torch.allclose(squared_mass_regulariser(assign, uniform), squared_mass_regulariser(assign), atol=1e-5)


def test_kl_to_a_prior_is_zero_when_the_marginal_matches_it():
    prior = torch.tensor([0.5, 0.3, 0.2])
    assign = prior.repeat(4, 1)  # every sample spread exactly as the prior
    assert abs(marginal_entropy_penalty(assign, prior).item()) < 1e-6
    assert abs(entropy_regulariser(assign, prior).item()) < 1e-6
    hand = (0.5 * math.log(0.5 / 0.2) + 0.5 * math.log(0.5 / 0.3))  # marginal (0.5, 0.5, 0) against (0.2, 0.3, 0.5)
    two = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    assert abs(entropy_regulariser(two, torch.tensor([0.2, 0.3, 0.5])).item() - hand) < 1e-5


def test_squared_mass_to_a_prior_is_smallest_at_proportional_masses():
    prior = torch.tensor([0.6, 0.3, 0.1])
    proportional = prior.repeat(10, 1)
    for other in (torch.full((10, 3), 1 / 3), torch.tensor([[0.5, 0.3, 0.2]]).repeat(10, 1)):
        assert squared_mass_regulariser(proportional, prior) < squared_mass_regulariser(other, prior)


def test_sinkhorn_meets_given_marginals_and_weight_zero_is_a_row_softmax():
    logits = torch.randn(200, 4)
    prior = torch.tensor([0.4, 0.3, 0.2, 0.1])
    q = sinkhorn(logits, 0.5, 200, marginals=prior)
    assert torch.allclose(q.sum(0) / 200, prior, atol=1e-3) and torch.allclose(q.sum(1), torch.ones(200), atol=1e-4)
    assert torch.allclose(sinkhorn(logits, 0.5, 3, column_weight=0.0), torch.softmax(logits / 0.5, dim=1), atol=1e-5)
    half = sinkhorn(logits, 0.5, 50, column_weight=0.5).sum(0)
    full, free = sinkhorn(logits, 0.5, 50).sum(0), torch.softmax(logits / 0.5, dim=1).sum(0)
    assert full.std() < half.std() < free.std()  # the relaxation lies between the two


@pytest.mark.parametrize("weight, prior, chunk", [(1.0, None, 7), (0.5, None, 1000), (1.0, "skewed", 3)])
def test_the_chunked_readout_is_the_whole_matrix_sinkhorn(weight, prior, chunk):
    from contraclust.losses import sinkhorn_readout

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 6, generator=generator) * 0.1
    marginals = torch.tensor([0.3, 0.2, 0.2, 0.1, 0.1, 0.1]) if prior else None
    for iterations, tolerance in ((1, None), (4, None), (100, 0.01)):
        whole = sinkhorn(logits, 0.05, iterations, tolerance=tolerance, marginals=marginals, column_weight=weight)
        chunked = sinkhorn_readout(logits / 0.05, iterations, tolerance, marginals, weight, chunk_rows=chunk)
        assert torch.allclose(chunked, whole, atol=1e-4), (iterations, (chunked - whole).abs().max())
