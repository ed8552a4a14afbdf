import pytest
import torch

from contraclust.data import read_mnist5k
from contraclust.errors import ConfigError, TrainingDiverged
from contraclust.presets import build_config
from contraclust.training import Trainer
from contraclust.training.checkpoint import list_checkpoints
from helpers import TINY


def tiny_config(**kw):
    return build_config("cc", "mnist5k-cpu", n_clusters=10, epochs=kw.pop("epochs", 2), batch_size=64, seed=0,
                        overrides=TINY + ["train.progress=false", "train.checkpoint_every=1"] + kw.pop("overrides", []))


def small_data(n=256):
    data = read_mnist5k()
    data.images, data.labels = data.images[:n], data.labels[:n]
    return data


def test_train_writes_run_folder_and_logs(tmp_path):
    config = tiny_config(overrides=["train.eval_every=1", "train.checkpoint_every=1"])
    result = Trainer(config, small_data(), tmp_path / "run", "cpu").fit()
    assert set(result.metrics) == {"nmi", "acc", "ari"}
    for name in ("log.csv", "assignments.csv", "metrics.json"):
        assert (tmp_path / "run" / name).exists(), name
    assert not (tmp_path / "run" / "config.json").exists()  # the Run writes it, alone (run.py)
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["epoch_0001.pt", "epoch_0002.pt"]
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,loss,instance,cluster,entropy") and len(log) == 3


def test_resume_in_process_matches_uninterrupted(tmp_path):
    data = small_data()
    full = Trainer(tiny_config(epochs=4), data, tmp_path / "full", "cpu")
    full.fit()
    first = Trainer(tiny_config(epochs=4), data, tmp_path / "part", "cpu")
    first.fit(on_epoch_end=lambda row: row["epoch"] == 2)  # interrupted after epoch 2's checkpoint
    assert first.history[-1]["epoch"] == 2
    second = Trainer(tiny_config(epochs=4), data, tmp_path / "part", "cpu")
    assert second.resume() and second.start_epoch == 2
    second.fit()
    for key, value in full.method.state_dict().items():
        assert torch.equal(value, second.method.state_dict()[key]), key


def test_nan_loss_stops_with_clear_error(tmp_path):
    config = tiny_config(overrides=["optim.lr=1e30", "train.log_every=1"], epochs=3)
    trainer = Trainer(config, small_data(), tmp_path / "run", "cpu")
    with torch.no_grad():
        for p in trainer.method.parameters():
            p.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="the loss became nan"):
        trainer.fit()


def test_k_larger_than_data_and_batch_larger_than_data():
    with pytest.raises(ConfigError, match="only 256 samples"):
        Trainer(build_config("cc", "mnist5k-cpu", n_clusters=300, epochs=1, batch_size=64, seed=0, overrides=TINY),
                small_data(), None, "cpu")
    with pytest.raises(ConfigError, match="batch size 512 is larger"):
        Trainer(build_config("cc", "mnist5k-cpu", n_clusters=10, epochs=1, batch_size=512, seed=0, overrides=TINY),
                small_data(), None, "cpu")


def test_lr_schedule_warmup_and_cosine():
    config = tiny_config(overrides=["optim.schedule=cosine", "optim.warmup_epochs=1", "optim.lr=1.0"], epochs=3)
    trainer = Trainer(config, small_data(), None, "cpu")
    steps = trainer.steps_per_epoch
    assert trainer.lr_at(0) == pytest.approx(1 / steps)
    assert trainer.lr_at(steps - 1) == pytest.approx(1.0)
    assert trainer.lr_at(3 * steps - 1) < 0.05


def test_instance_only_pass_over_extra_images_comes_first_each_epoch(tmp_path):
    """CC's STL-10 schedule: each epoch passes over the unlabelled images with L_ins alone, then over
    the data to cluster with the whole loss; both count as steps of the schedule."""
    data, extra = small_data(128), small_data(256)
    extra.labels = None
    trainer = Trainer(tiny_config(epochs=1), data, tmp_path / "run", "cpu", instance_data=extra)
    assert (trainer.instance_steps, trainer.cluster_steps, trainer.steps_per_epoch) == (4, 2, 6)
    passes = [batch.instance_only for batch in trainer.epoch_batches()]
    assert passes == [True] * 4 + [False] * 2
    called = []
    original = trainer.method.instance_loss
    trainer.method.instance_loss = lambda outputs: called.append(1) or original(outputs)
    trainer.fit()
    row = trainer.history[-1]
    assert len(called) == 4 and {"unlabelled_instance", "instance", "cluster"} <= set(row)
    assert "unlabelled_instance" in (tmp_path / "run" / "log.csv").read_text().splitlines()[0]


def test_instance_only_pass_needs_a_method_with_an_instance_loss_and_alike_images():
    data = small_data(128)
    with pytest.raises(ConfigError, match="c3 has no instance-level loss"):
        Trainer(build_config("c3", "mnist5k-cpu", epochs=1, batch_size=64, overrides=TINY), data, None, "cpu",
                instance_data=data)
    other = small_data(128)
    other.images = other.images[:, :, :20, :20].contiguous()
    with pytest.raises(ConfigError, match="must be alike"):
        Trainer(tiny_config(epochs=1), data, None, "cpu", instance_data=other)


def test_a_checkpoint_whose_random_streams_came_from_another_device_resumes_re_seeded(tmp_path, caplog):
    """A CUDA generator's state (Philox: 16 bytes) does not load into a CPU generator (Mersenne Twister):
    a GPU run resumed on a CPU (or the reverse) re-seeds its streams from the seed and step, says so, and is
    reproducible."""
    import shutil

    import numpy as np

    caplog.set_level("INFO", logger="contraclust")
    data = small_data()
    Trainer(tiny_config(epochs=3), data, tmp_path / "gpu-run", "cpu").fit(on_epoch_end=lambda row: row["epoch"] == 2)
    path = list_checkpoints(tmp_path / "gpu-run" / "checkpoints")[-1]
    state = torch.load(path, weights_only=True)
    cuda_state = torch.zeros(16, dtype=torch.uint8)  # as torch.cuda's generator stores it: seed and offset
    with pytest.raises(RuntimeError):
        torch.Generator().set_state(cuda_state)  # what resuming did before
    state.update(order_generator=cuda_state, augment_generator=cuda_state, generator_device="cuda")
    torch.save(state, path)
    labels = []
    for attempt in ("a", "b"):
        shutil.copytree(tmp_path / "gpu-run", tmp_path / attempt)
        trainer = Trainer(tiny_config(epochs=3), data, tmp_path / attempt, "cpu")
        assert trainer.resume() and trainer.start_epoch == 2
        labels.append(trainer.fit().labels)
    assert "whose random streams were on cuda" in caplog.text and "re-seeded from the seed and step" in caplog.text
    assert np.array_equal(labels[0], labels[1])
    del state["generator_device"]  # written before the field existed: told apart by the state's size
    torch.save(state, path)
    assert Trainer(tiny_config(epochs=3), data, tmp_path / "gpu-run", "cpu").resume()


def test_under_torchrun_every_cuda_device_is_the_processs_own(monkeypatch):
    """``--device cuda`` (or auto) under torchrun is cuda:$LOCAL_RANK, so that work before the trainer (a frozen
    backbone's embedding) is not piled onto GPU 0 by every rank."""
    from contraclust.training.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    for name in ("auto", "cuda", "cuda:0", None):
        assert resolve_device(name) == torch.device("cuda", 3), name
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert resolve_device("cuda") == torch.device("cuda", 0) and resolve_device("cuda:1") == torch.device("cuda", 1)
