"""Images' nearest-neighbour positives, mined from the network's embedding after a warm-up."""
import logging

import torch

from contraclust.config import AugmentConfig
from contraclust.data import read_mnist5k
from contraclust.presets import build_config
from contraclust.training import Trainer
from contraclust.training.checkpoint import load_checkpoint
from contraclust.training.mined_neighbours import NeighbourMiner
from helpers import TINY

MINED = ["augment.neighbours=3", "augment.neighbour_start=0.5", "augment.neighbour_refresh=2"]


def config(epochs=4, overrides=()):
    return build_config("cc", "mnist5k-cpu", n_clusters=10, epochs=epochs, batch_size=64, seed=0,
                        overrides=TINY + ["train.progress=false", "train.checkpoint_every=1", *MINED, *overrides])


def small_data(n=128):
    data = read_mnist5k()
    data.images, data.labels = data.images[:n], data.labels[:n]
    return data


def test_searches_once_the_start_share_of_steps_is_done_and_again_every_refresh_epochs():
    miner = NeighbourMiner(AugmentConfig(neighbours=5, neighbour_start=0.5, neighbour_refresh=3), seed=0)
    assert not miner.due(epoch=1, step=0, total_steps=100) and not miner.due(epoch=5, step=49, total_steps=100)
    assert miner.due(epoch=6, step=50, total_steps=100)
    miner.mined_at = 6
    assert [miner.due(epoch, 60, 100) for epoch in (7, 8, 9, 10)] == [False, False, True, True]


def test_a_run_trains_with_neighbours_of_its_own_embedding_from_half_way(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    trainer = Trainer(config(), small_data(), tmp_path / "run", "cpu")
    seen = []
    trainer.fit(on_epoch_end=lambda row: seen.append(trainer.partner is not None) and False)
    assert seen == [False, False, True, True]
    assert trainer.miner.mined_at == 3  # 2 steps an epoch: epoch 3 starts at step 4 of 8, and searches
    neighbours = trainer.miner.indices
    assert neighbours.shape == (128, 3) and not (neighbours == torch.arange(128)[:, None]).any()
    assert "mined from the network's embedding" in caplog.text
    saved = load_checkpoint(tmp_path / "run")["mined_neighbours"]
    assert saved["mined_at"] == 3 and torch.equal(saved["indices"], neighbours)


def test_a_resumed_run_keeps_its_neighbours_and_ends_as_an_uninterrupted_one(tmp_path):
    data = small_data()
    full = Trainer(config(epochs=6), data, tmp_path / "full", "cpu")
    full.fit()
    first = Trainer(config(epochs=6), data, tmp_path / "part", "cpu")
    first.fit(on_epoch_end=lambda row: row["epoch"] == 4)  # killed after the epoch that searched (4)
    assert first.miner.mined_at == 4
    second = Trainer(config(epochs=6), data, tmp_path / "part", "cpu")
    assert second.resume() and second.partner is not None and torch.equal(second.miner.indices, first.miner.indices)
    second.fit()
    assert second.miner.mined_at == full.miner.mined_at == 6  # searched again after the resume
    for key, value in full.method.state_dict().items():
        assert torch.equal(value, second.method.state_dict()[key]), key
