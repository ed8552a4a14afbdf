"""Resident and streamed data: the choice of path, the same batches and losses on both, packs that stream."""
import numpy as np
import pytest
import torch
from PIL import Image

from contraclust.data import load_data, read_mnist5k
from contraclust.data.pack import pack_folder
from contraclust.presets import build_config
from contraclust.training import Trainer
from contraclust.training.streaming import StreamingSource, choose_placement
from helpers import TINY


def config(*overrides, epochs=1):
    return build_config("cc", "mnist5k-cpu", n_clusters=10, epochs=epochs, batch_size=32, seed=3,
                        overrides=TINY + ["train.progress=false", *overrides])


def small_data(n=160):
    data = read_mnist5k()
    data.images, data.labels = data.images[:n], data.labels[:n]
    return data


def test_the_path_follows_the_memory_allowance():
    cpu = torch.device("cpu")
    assert choose_placement(10 * 2 ** 20, cpu, limit_mb=20)[0] == "resident"
    placement, reason = choose_placement(30 * 2 ** 20, cpu, limit_mb=20)
    assert placement == "streaming" and "30.0 MB is more than the limit" in reason
    assert choose_placement(1, cpu, "streaming")[0] == "streaming"
    assert choose_placement(2 ** 50, cpu)[0] == "streaming"  # a petabyte never fits


def test_streaming_and_resident_give_the_same_batches_and_losses(caplog):
    caplog.set_level("INFO", logger="contraclust")
    data = small_data()
    resident = Trainer(config("train.data_placement=resident"), data, None, "cpu")
    streamed = Trainer(config("train.data_placement=streaming"), data, None, "cpu")
    assert (resident.source.placement, streamed.source.placement) == ("resident", "streaming")
    assert "data: streaming (batches gathered by a background thread)" in caplog.text
    pairs = list(zip(resident.epoch_batches(), streamed.epoch_batches()))
    assert len(pairs) == resident.cluster_steps == 5
    for (a, rows_a, _), (b, rows_b, _) in pairs:
        assert torch.equal(a, b) and torch.equal(rows_a, rows_b)
    first, second = resident.fit(), streamed.fit()
    assert first.history[0]["loss"] == second.history[0]["loss"]
    assert np.array_equal(first.labels, second.labels)


def test_a_pack_larger_than_the_memory_limit_streams(tmp_path, caplog):
    caplog.set_level("INFO", logger="contraclust")
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(24):
            Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    data = load_data(pack_folder(tmp_path / "imgs", tmp_path / "imgs.ccpack", size=16, workers=1, progress=False))
    trainer = Trainer(config("train.data_memory_limit_mb=0.005", "augment.size=16"), data, None, "cpu")
    assert trainer.source.placement == "streaming"
    assert "data: streaming" in caplog.text and "is more than the limit set by train.data_memory_limit_mb" in caplog.text
    result = trainer.fit()
    assert result.epochs == 1 and len(result.labels) == 48


def test_the_streaming_thread_stops_when_the_loop_stops_and_passes_on_its_errors():
    samples = torch.arange(100, dtype=torch.uint8).reshape(100, 1)
    source = StreamingSource(samples, torch.device("cpu"), depth=2)
    batches = source.batches([torch.tensor([i, i + 1]) for i in range(0, 90, 2)])
    assert next(batches).tolist() == [[0], [1]]
    batches.close()  # the consumer broke out early: the thread is joined, nothing hangs
    broken = source.batches([torch.tensor([0]), torch.tensor([500])])
    assert next(broken).tolist() == [[0]]
    with pytest.raises(IndexError):
        next(broken)


def test_a_jpeg_pack_streams_the_same_batches_as_its_decoded_copy(tmp_path):
    yy, xx = np.mgrid[0:20, 0:20]
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(16):
            Image.fromarray(((xx * (i + 1) + yy * 3) % 256).astype(np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    data = load_data(pack_folder(tmp_path / "imgs", tmp_path / "j.ccpack", size=16, workers=1, progress=False,
                                 image_format="jpeg"))
    resident = Trainer(config("train.data_placement=resident", "augment.size=16"), data, None, "cpu")
    streamed = Trainer(config("train.data_placement=streaming", "augment.size=16"), data, None, "cpu")
    assert isinstance(resident.samples, torch.Tensor) and not isinstance(streamed.samples, torch.Tensor)
    for (a, _, _), (b, _, _) in zip(resident.epoch_batches(), streamed.epoch_batches()):
        assert torch.equal(a, b)
    assert resident.fit().history[0]["loss"] == streamed.fit().history[0]["loss"]
