import numpy as np
import pytest

from contraclust import ContrastiveClustering
from contraclust.errors import ConfigError
from helpers import TINY


def test_fit_predict_on_arrays_and_features():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 16)) * 4
    y = np.repeat(np.arange(3), 60)
    X = centers[y] + rng.normal(size=(180, 16))
    model = ContrastiveClustering(n_clusters=3, epochs=15, batch_size=60, random_state=0, device="cpu",
                                  progress=False, overrides=["train.eval_every=0"])
    labels = model.fit_predict(X, y)
    assert labels.shape == (180,) and model.probabilities_.shape == (180, 3)
    assert model.metrics_["acc"] > 0.9  # three well separated blobs
    assert np.array_equal(model.predict(X), labels)
    assert model.config_.model.backbone == "mlp" and model.n_features_in_ == 16
    assert 0 <= model.score(X, y) <= 1


def test_get_set_params_and_unfitted():
    model = ContrastiveClustering(n_clusters=4)
    assert model.get_params()["n_clusters"] == 4
    assert model.set_params(n_clusters=5).n_clusters == 5
    with pytest.raises(ValueError):
        model.set_params(colour="red")
    with pytest.raises(ConfigError, match="not fitted"):
        model.predict(np.zeros((2, 4)))


def test_images_array():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (64, 12, 12), dtype=np.uint8)
    model = ContrastiveClustering(n_clusters=2, epochs=1, batch_size=32, device="cpu", progress=False,
                                  overrides=TINY + ["augment.size=12"]).fit(X)
    assert model.labels_.shape == (64,) and model.metrics_ == {}
