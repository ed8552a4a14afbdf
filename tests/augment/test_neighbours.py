import torch

from contraclust.augment import build_augmenter
from contraclust.augment.neighbours import NeighbourPartner, nearest_neighbours, search_neighbours
from contraclust.config import AugmentConfig


def test_nearest_neighbours_match_a_brute_force_search():
    x = torch.randn(300, 12, generator=torch.Generator().manual_seed(0))
    found = nearest_neighbours(x, 5, batch_size=64)
    unit = torch.nn.functional.normalize(x, dim=1)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-2)
    expected = similarity.topk(5, dim=1).indices
    assert torch.equal(found, expected)
    assert not (found == torch.arange(300)[:, None]).any()


def test_beyond_the_exact_limit_an_inverted_file_finds_the_neighbours_and_measures_its_recall():
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(300, 16, generator=generator)
    x = centres.repeat_interleave(20, dim=0) + 0.05 * torch.randn(6000, 16, generator=generator)
    search = search_neighbours(x, 10, exact_limit=1000)
    assert search.cells > 1 and search.probes > 0
    assert search.indices.shape == (6000, 10) and not (search.indices == torch.arange(6000)[:, None]).any()
    exact = search_neighbours(x, 10).indices
    recall = (search.indices[:, :, None] == exact[:, None, :]).any(dim=1).float().mean().item()
    assert recall > 0.95 and abs(search.recall - recall) < 0.03  # the sampled recall is the whole set's
    assert "recall" in search.describe() and search_neighbours(x, 10).describe() == "exact search"


def test_partner_is_the_sample_or_one_of_its_neighbours():
    neighbours = torch.tensor([[1, 2], [0, 2], [0, 1]])
    rows = torch.tensor([0, 1, 2] * 50)
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(NeighbourPartner(neighbours, 0.0).pick(rows, generator), rows)
    always = NeighbourPartner(neighbours, 1.0).pick(rows, generator)
    assert all(int(p) in neighbours[int(r)].tolist() for r, p in zip(rows, always))
    sometimes = NeighbourPartner(neighbours, 0.5).pick(rows, generator)
    assert 0.3 < (sometimes != rows).float().mean() < 0.7


def test_vector_noise_follows_each_features_spread():
    samples = torch.randn(1000, 2) * torch.tensor([1.0, 100.0])
    augment = build_augmenter(AugmentConfig(noise_std=0.1), is_image=False, samples=samples)
    noise = augment(torch.zeros(5000, 2), torch.Generator().manual_seed(0))
    ratio = noise[:, 1].std() / noise[:, 0].std()
    assert 80 < ratio < 125


def test_a_second_search_of_the_same_features_is_remembered_and_other_features_are_searched(monkeypatch):
    import contraclust.augment.neighbours as neighbours

    searched = []
    real = neighbours.search_neighbours
    monkeypatch.setattr(neighbours, "search_neighbours", lambda *a, **k: searched.append(1) or real(*a, **k))
    x = torch.randn(200, 8, generator=torch.Generator().manual_seed(1))
    first = neighbours.search_neighbours_once(x, 5)
    assert neighbours.search_neighbours_once(x.clone(), 5) is first and len(searched) == 1
    y = x.clone()
    y[7, 3] += 1.0
    assert neighbours.search_neighbours_once(y, 5) is not first and len(searched) == 2
    assert neighbours.search_neighbours_once(y, 6).indices.shape == (200, 6) and len(searched) == 3
