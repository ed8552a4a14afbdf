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
    for a, b in pairs:
        assert torch.equal(a.samples, b.samples) and torch.equal(a.rows, b.rows)
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
    assert next(batches)[0].tolist() == [[0], [1]]
    batches.close()  # the consumer broke out early: the thread is joined, nothing hangs
    broken = source.batches([torch.tensor([0]), torch.tensor([500])])
    assert next(broken)[0].tolist() == [[0]]
    with pytest.raises(IndexError):
        next(broken)


def jpeg_pack(tmp_path):
    """32 grey gradients in two class folders, packed as JPEG at 16 px."""
    yy, xx = np.mgrid[0:20, 0:20]
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(16):
            Image.fromarray(((xx * (i + 1) + yy * 3) % 256).astype(np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    return load_data(pack_folder(tmp_path / "imgs", tmp_path / "j.ccpack", size=16, workers=1, progress=False,
                                 image_format="jpeg"))


def test_a_jpeg_pack_streams_the_same_batches_as_its_decoded_copy(tmp_path):
    data = jpeg_pack(tmp_path)
    resident = Trainer(config("train.data_placement=resident", "augment.size=16"), data, None, "cpu")
    streamed = Trainer(config("train.data_placement=streaming", "augment.size=16"), data, None, "cpu")
    assert isinstance(resident.samples, torch.Tensor) and not isinstance(streamed.samples, torch.Tensor)
    for a, b in zip(resident.epoch_batches(), streamed.epoch_batches()):
        assert torch.equal(a.samples, b.samples)
    assert resident.fit().history[0]["loss"] == streamed.fit().history[0]["loss"]


def test_the_allowance_counts_the_allocators_free_blocks_and_leaves_room_for_the_step(monkeypatch):
    """On CUDA ``mem_get_info`` counts PyTorch's cached but unused blocks as used (a C3 stage after a CC
    stage in the same process would see less): they count as free. And what a step needs stays free."""
    from contraclust.training import streaming

    gib = 2 ** 30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10 * gib, 80 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 30 * gib)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 5 * gib)
    cuda = torch.device("cuda", 0)
    assert streaming.free_memory_bytes(cuda) == 35 * gib
    assert choose_placement(17 * gib, cuda)[0] == "resident"  # half of 35 GiB
    placement, reason = choose_placement(17 * gib, cuda, working_bytes=20 * gib)
    assert placement == "streaming" and "less the 20.0 GB training needs" in reason


def test_the_step_memory_is_measured_from_autograds_saved_activations():
    from contraclust.training.memory import activation_bytes_per_sample, step_bytes

    trainer = Trainer(config("train.precision=fp32"), small_data(64), None, "cpu")
    buffers = {k: v.clone() for k, v in trainer.method.state_dict().items() if "running" in k}
    views = trainer.make_views(trainer.samples[:4])
    per_image = activation_bytes_per_sample(trainer.method, *views)
    # the small CNN at width 8 on 28 px: its first two convolutions' outputs alone are 2 x 8 x 28 x 28 floats a view
    assert 2 * 2 * 8 * 28 * 28 * 4 < per_image < 2 * 10 ** 6
    assert all(torch.equal(v, trainer.method.state_dict()[k]) for k, v in buffers.items())  # BatchNorm untouched
    assert step_bytes(trainer.method, per_image, 32) > 32 * per_image


def test_a_streamed_set_is_evaluated_through_the_background_thread(tmp_path, monkeypatch):
    """Evaluation of a streamed JPEG pack decodes batch by batch on the streaming thread (as training does),
    never the whole set at once on the main thread, and reads out as the resident path does."""
    import threading

    from contraclust.data.pack import JpegImages

    data = jpeg_pack(tmp_path)
    resident = Trainer(config("train.data_placement=resident", "augment.size=16", "train.eval_batch_size=8"), data,
                       None, "cpu")
    streamed = Trainer(config("train.data_placement=streaming", "augment.size=16", "train.eval_batch_size=8"), data,
                       None, "cpu")
    decoded_on, decode = [], JpegImages.__getitem__

    def watched(self, index):
        decoded_on.append((threading.current_thread().name, len(self._rows(index)[0])))
        return decode(self, index)

    monkeypatch.setattr(JpegImages, "__getitem__", watched)
    labels, probabilities = streamed.predict()
    assert decoded_on and all(name == "contraclust-stream" and rows <= 8 for name, rows in decoded_on)
    expected_labels, expected = resident.predict()
    assert np.array_equal(labels, expected_labels) and np.allclose(probabilities, expected, atol=1e-6)


def test_what_a_forward_saves_once_is_not_counted_per_sample():
    """Under bf16 autocast a forward saves low-precision copies of the weights once, whatever the batch; a
    probe of two samples had counted them per sample, and CC's five heads of K = 1000 on 64-D vectors
    then 'needed' 26 GB at the recipe's batch of 4096 and were refused."""
    from contraclust.config import ModelConfig, RunConfig
    from contraclust.methods import build_method
    from contraclust.training.device import autocast_context
    from contraclust.training.memory import activation_bytes, saved_bytes

    config = RunConfig(method="cc", n_clusters=1000, model=ModelConfig(backbone="mlp"),
                       method_options={"cluster_heads": 5})
    method = build_method(config, (64,))
    x = torch.randn(8, 64)
    bf16 = lambda: autocast_context(torch.bfloat16, torch.device("cpu"))  # noqa: E731
    per_sample, fixed = activation_bytes(method, x, x, bf16)
    fp32_per_sample, _ = activation_bytes(method, x, x)
    head_weights = sum(p.numel() for n, p in method.named_parameters() if "cluster" in n)
    assert fixed > 2 * head_weights * 0.9  # the heads' bf16 copies, saved once
    assert per_sample < fp32_per_sample < 2 * 10 ** 5 and per_sample * 8 + fixed == pytest.approx(saved_bytes(method, x, x, bf16))
