import numpy as np
import pytest

from contraclust.metrics import cluster_accuracy, evaluate_clustering


def test_perfect_under_permutation():
    y = np.repeat(np.arange(5), 20)
    perm = np.array([3, 0, 4, 1, 2])
    m = evaluate_clustering(y, perm[y])
    assert m == pytest.approx({"nmi": 1.0, "acc": 1.0, "ari": 1.0})


def test_hand_computed_accuracy():
    y = np.array([0, 0, 0, 1, 1, 1])
    pred = np.array([1, 1, 0, 0, 0, 0])  # best map: 1->0 (2 right), 0->1 (3 right)
    assert cluster_accuracy(y, pred) == pytest.approx(5 / 6)


def test_more_clusters_than_classes_and_empty_ids():
    y = np.array([0, 0, 1, 1])
    pred = np.array([7, 7, 2, 9])  # ids not 0..K-1; cluster 9 can only match nothing useful
    assert cluster_accuracy(y, pred) == pytest.approx(3 / 4)


def test_fewer_clusters_than_classes():
    y = np.array([0, 1, 2, 0, 1, 2])
    pred = np.zeros(6, dtype=int)  # everything in one cluster: ACC = largest class share
    m = evaluate_clustering(y, pred)
    assert m["acc"] == pytest.approx(1 / 3) and m["nmi"] == pytest.approx(0.0) and m["ari"] == pytest.approx(0.0)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        evaluate_clustering(np.zeros(3), np.zeros(4))
