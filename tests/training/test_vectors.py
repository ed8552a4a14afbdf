"""All four methods train on feature vectors through the same trainer, with nearest-neighbour views."""
import numpy as np
import pytest
import torch

from contraclust import ContrastiveClustering
from contraclust.presets import build_config
from contraclust.training import Trainer
from contraclust.data import from_array


def digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data.astype(np.float32), bunch.target


@pytest.mark.parametrize("method", ["cc", "c3", "drc", "clc"])
def test_every_method_clusters_vectors(method):
    X, y = digits()
    model = ContrastiveClustering(n_clusters=10, method=method, epochs=3, device="cpu", progress=False,
                                  random_state=0).fit(X, y)
    assert model.config_.augment.neighbours == 10 and model.config_.model.backbone == "mlp"
    assert model.metrics_["nmi"] > 0.3, model.metrics_  # far above chance (0) after three epochs
    assert model.predict(X[:7]).shape == (7,)


def test_the_models_input_statistics_come_from_the_training_data_and_travel_with_it(tmp_path):
    X, y = digits()
    config = build_config("cc", "features-cpu", epochs=1, overrides=["train.progress=false", "train.eval_every=0"])
    trainer = Trainer(config, from_array(X * 3 + 5, y), tmp_path / "run", "cpu")
    backbone = trainer.method.backbone
    assert torch.allclose(backbone.input_mean, torch.from_numpy(X.mean(0) * 3 + 5), atol=1e-3)
    assert trainer.partner is not None and trainer.partner.neighbours.shape == (1797, 10)
    trainer.fit()
    state = torch.load(next((tmp_path / "run" / "checkpoints").iterdir()), weights_only=True)["model"]
    assert torch.equal(state["backbone.input_mean"], backbone.input_mean)
