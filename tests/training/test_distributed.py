"""Several processes compute what one process computes on the whole batch: the gathered losses and their
gradients, the trainer's steps, and a torchrun run's clusters, time budget and resume."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from contraclust import losses
from contraclust.data import read_sklearn_digits
from contraclust.errors import ConfigError, ContraclustError
from contraclust.presets import build_config
from contraclust.training import Trainer
from contraclust.training.checkpoint import list_checkpoints, load_checkpoint
from contraclust.training.distributed import DistContext, check_distributed, gather
from contraclust.run.folder import RunLock
from helpers import ROOT, TINY, mnist_subset

N, WORLD = 16, 2


def loss_cases():
    """name -> (function of a dict of per-sample tensors, the tensors' shapes, the per-sample transform
    applied *before* the gather). The trainer gathers softmax outputs, so the backward of the gather sees
    the gradient of a transposed (column) or expanded (batch-mean) use of them: torch 2.13's
    ``torch.distributed.nn.functional.all_gather`` got exactly those wrong on gloo."""
    k = 5
    before = {"softmax": lambda t: t.softmax(1), "none": lambda t: t}
    return {
        "nt_xent": (lambda t: losses.nt_xent(F.normalize(t["a"], dim=1), F.normalize(t["b"], dim=1), 0.5),
                    {"a": (N, 8), "b": (N, 8)}, before["none"]),
        "cluster_contrast+entropy": (
            lambda t: losses.cluster_contrast(t["a"].softmax(1), t["b"].softmax(1), 1.0)
            + losses.marginal_entropy_penalty(t["a"].softmax(1)) + losses.marginal_entropy_penalty(t["b"].softmax(1)),
            {"a": (N, k), "b": (N, k)}, before["none"]),
        "cluster_contrast of gathered softmax (the trainer's order)": (
            lambda t: losses.cluster_contrast(t["a"], t["b"], 1.0), {"a": (N, k), "b": (N, k)}, before["softmax"]),
        "entropy of gathered softmax": (
            lambda t: losses.marginal_entropy_penalty(t["a"]) + losses.marginal_entropy_penalty(t["b"]),
            {"a": (N, k), "b": (N, k)}, before["softmax"]),
        "a transposed, expanded use": (lambda t: (t["a"].T * torch.arange(N, dtype=t["a"].dtype)).sum(),
                                       {"a": (N, k)}, before["none"]),
        "cross_instance": (lambda t: losses.cross_instance_loss(F.normalize(t["a"], dim=1),
                                                                 F.normalize(t["b"], dim=1), 0.3, 1.0),
                           {"a": (N, 8), "b": (N, 8)}, before["none"]),
        "assignment_feature": (lambda t: losses.assignment_feature_loss(t["a"], t["b"], 0.5), {"a": (N, k), "b": (N, k)},
                               before["none"]),
        "assignment_probability+regularisers": (
            lambda t: losses.assignment_probability_loss(t["a"], t["b"])
            + losses.squared_mass_regulariser(t["a"]) + losses.entropy_regulariser(t["b"]),
            {"a": (N, k), "b": (N, k)}, before["softmax"]),
        "sinkhorn+split_contrastive": (
            lambda t: losses.split_contrastive_loss(losses.sinkhorn(t["la"], 0.5, 3), t["va"],
                                                    losses.sinkhorn(t["lb"], 0.5, 3), t["vb"], 0.5),
            {"la": (N, k), "lb": (N, k), "va": (N, 8), "vb": (N, 8)}, before["none"]),
    }


def make_inputs(shapes):
    g = torch.Generator().manual_seed(0)
    return {name: torch.randn(shape, generator=g, dtype=torch.float64) for name, shape in shapes.items()}


def worker(rank, folder):
    dist.init_process_group("gloo", init_method=f"file://{folder}/init", rank=rank, world_size=WORLD)
    out = {}
    for name, (fn, shapes, local_transform) in loss_cases().items():
        full = make_inputs(shapes)
        local = {k: v.chunk(WORLD)[rank].clone().requires_grad_() for k, v in full.items()}
        loss = fn({k: gather(local_transform(v)) for k, v in local.items()})
        loss.backward()
        # DDP averages parameter gradients over ranks: the per-rank gradient / WORLD is what a
        # parameter upstream of this rank's rows receives.
        out[name] = (loss.item(), {k: (v.grad / WORLD) for k, v in local.items()})
    torch.save(out, f"{folder}/rank{rank}.pt")
    dist.destroy_process_group()


def test_two_processes_equal_one_big_batch(tmp_path):
    mp.spawn(worker, args=(str(tmp_path),), nprocs=WORLD, join=True)
    results = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(WORLD)]
    for name, (fn, shapes, local_transform) in loss_cases().items():
        full = {k: v.requires_grad_() for k, v in make_inputs(shapes).items()}
        loss = fn({k: local_transform(v) for k, v in full.items()})
        loss.backward()
        for rank in range(WORLD):
            rank_loss, rank_grads = results[rank][name]
            assert abs(rank_loss - loss.item()) < 1e-5, name
            for key, grad in rank_grads.items():
                expected = full[key].grad.chunk(WORLD)[rank]
                assert torch.allclose(grad, expected, atol=1e-5), (name, key, (grad - expected).abs().max())


# Views that are the images themselves (whole-image crops, no flips, colour or affine terms), so that every
# split of a batch sees the same inputs; BatchNorm by its running statistics, so that a rank's half of the
# batch is normalised as the whole batch is. The rest of the step is the trainer's own.
IDENTITY_VIEWS = ["augment.crop_scale=1,1", "augment.crop_ratio=1,1", "augment.flip_p=0", "augment.jitter_p=0",
                  "augment.rotate_degrees=0", "augment.shear_degrees=0", "augment.translate=0",
                  "augment.grayscale_p=0", "train.precision=fp32", "train.progress=false"]
STEP_METHODS = {"cc": ["method.cluster_heads=2"], "c3": [], "drc": [], "clc": ["method.sinkhorn_queue=96"]}


def trainer_steps(method: str, steps: int = 3) -> dict[str, torch.Tensor]:
    """The state after ``steps`` training steps on digits, in whatever process group is set up."""
    torch.set_num_threads(1)
    config = build_config(method, "mnist5k-cpu", n_clusters=10, epochs=1, batch_size=64, seed=5,
                          overrides=TINY + IDENTITY_VIEWS + ["augment.size=8"] + STEP_METHODS[method])
    trainer = Trainer(config, read_sklearn_digits(), None, "cpu")
    for module in trainer.method.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    for step, batch in zip(range(steps), trainer.epoch_batches()):
        trainer.train_step(batch.samples, step, batch.partner)
    return {k: v.detach().clone() for k, v in trainer.method.state_dict().items()}


def trainer_worker(rank, folder):
    os.environ.update(WORLD_SIZE=str(WORLD), RANK=str(rank), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", init_method=f"file://{folder}/init", rank=rank, world_size=WORLD)
    torch.save({method: trainer_steps(method) for method in STEP_METHODS}, f"{folder}/rank{rank}.pt")
    dist.destroy_process_group()


def test_the_trainers_steps_on_two_processes_equal_one_process_on_the_same_global_batch(tmp_path):
    """Views, DDP forward, the gather, each method's loss on the global batch, backward, DDP's gradient
    average and the optimiser step: after three steps every weight and buffer (CC's head losses, CLC's
    queue) is what one process computes on the same global batches."""
    mp.spawn(trainer_worker, args=(str(tmp_path),), nprocs=WORLD, join=True)
    results = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(WORLD)]
    for method in STEP_METHODS:
        alone = trainer_steps(method)
        for rank in range(WORLD):
            for key, value in alone.items():
                theirs = results[rank][method][key]
                assert torch.allclose(theirs.float(), value.float(), atol=2e-5, rtol=1e-4), (
                    method, rank, key, (theirs.float() - value.float()).abs().max())


def test_what_several_processes_cannot_do_is_refused():
    two = DistContext(rank=0, world_size=2)
    config = build_config("cc", "mnist5k-cpu", batch_size=64)
    check_distributed(config, two, torch.device("cpu"))  # fine
    with pytest.raises(ConfigError, match="must divide by the 2 processes"):
        check_distributed(build_config("cc", "mnist5k-cpu", batch_size=63), two, torch.device("cpu"))
    with pytest.raises(ConfigError, match="drop_last=false is not possible with 2 processes"):
        check_distributed(build_config("cc", "mnist5k-cpu", overrides=["train.drop_last=false"]), two,
                           torch.device("cpu"))
    with pytest.raises(ConfigError, match="sync_batchnorm needs CUDA"):
        check_distributed(build_config("cc", "mnist5k-cpu", overrides=["train.sync_batchnorm=true"]), two,
                           torch.device("cpu"))
    check_distributed(build_config("cc", "mnist5k-cpu", batch_size=63), DistContext(), torch.device("cpu"))


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun with gloo on Linux")
def kill_processes_mentioning(text):
    """SIGKILL every process whose command line contains ``text``."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if text.encode() in handle.read():
                        os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


def wait_until_released(folder, seconds=30):
    deadline = time.time() + seconds
    while True:
        try:
            with RunLock(folder):
                return
        except ContraclustError:
            assert time.time() < deadline, f"{folder} stayed locked"
            time.sleep(0.1)


def test_torchrun_two_processes_killed_then_resumed_with_one(tmp_path):
    data = mnist_subset(tmp_path / "d.npz", 800)
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    fit = ["fit", "--data", str(data), "--method", "cc", "--epochs", "6", "--batch-size", "128", "--device", "cpu",
           "--seed", "0", "--out", str(run), "--no-progress", "--no-report", "--set", "train.checkpoint_every=1"]
    fit += [a for t in TINY for a in ("--set", t)]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "-m", "contraclust"]
    proc = subprocess.Popen(torchrun + fit, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 240
    while not (run / "checkpoints" / "epoch_0002.pt").exists():
        if proc.poll() is not None:
            pytest.fail(f"torchrun ended early: {proc.stderr.read().decode()[-2000:]}")
        assert time.time() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    kill_processes_mentioning(str(run))  # torchrun's workers run in sessions of their own
    proc.wait()
    wait_until_released(run)
    assert not (run / "metrics.json").exists()
    assert load_checkpoint(run)["world_size"] == 2

    resumed = subprocess.run([sys.executable, "-m", "contraclust", "fit", "--out", str(run), "--resume",
                              "--no-progress", "--no-report", "--device", "cpu"], env=env, capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    assert load_checkpoint(run)["epoch"] == 6 and (run / "metrics.json").exists()
    assert [p.name for p in list_checkpoints(run / "checkpoints")][-1] == "epoch_0006.pt"


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun with gloo on Linux")
def test_torchrun_runs_the_default_cc_then_c3_stages_on_streamed_data(tmp_path):
    """C3 leaves the cluster head frozen; DDP must accept that (it did not before the head was marked so).
    The data is streamed (each rank gathers its own rows of every batch on its background thread)."""
    data = mnist_subset(tmp_path / "d.npz", 400)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    fit = ["fit", "--data", str(data), "--epochs", "3", "--batch-size", "64", "--device", "cpu", "--seed", "0",
           "--out", str(tmp_path / "run"), "--no-progress", "--set", "train.data_placement=streaming"]
    fit += [a for t in TINY for a in ("--set", t)]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "contraclust"] + fit, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "C3: CC stage" in done.stderr and (tmp_path / "run" / "metrics.json").exists()
    assert "data: streaming (batches gathered by a background thread)" in done.stderr


# The CPU test below: torchrun with 2 processes, a 40 s budget, a busy loop beside them on the 2 cores, killed in
# the CC stage and resumed. Where the NMI floor comes from (digits, seeds 0-3, this machine's 2 cores):
# - this very scenario measured NMI 0.60 / 0.56 / 0.62 / 0.57 (seeds 0-3); one process in it 0.74 / 0.69
#   (seeds 0, 1): the 2 workers and the busy loop share 2 cores, so they run fewer steps in the budget;
# - with equal epochs (CC, 20) one and two processes agree: 0.795 / 0.765 / 0.817 against 0.812 / 0.739 / 0.791;
# - on an idle machine, the same 40 s budget: one process 0.903 / 0.867 / 0.830, two 0.823 / 0.706 / 0.848;
# - the collapse this guards against (torch's gather returning wrong gradients) gave 0.000 to 0.02.
TORCHRUN_NMI_FLOOR = 0.45
START_UP_ALLOWANCE = 15.0  # two launches of torchrun and its workers (about 5 s each) and the work lost at the kill


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun with gloo on Linux")
def test_torchrun_budget_holds_beside_a_cpu_hog_and_across_a_kill_then_resume(tmp_path):
    """The default two-stage job on digits over 2 processes with a 40 s budget, one core taken by a busy loop:
    killed inside its CC stage, resumed, it ends inside the budget (both processes' time together, plus the
    stated start-up allowance), writes its files once, and clusters digits as one process does."""
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "-m", "contraclust"]
    fit = ["fit", "--data", "digits", "-k", "10", "--budget", "40s", "--device", "cpu", "--seed", "0",
           "--out", str(run), "--no-progress", "--no-report", "--set", "self_label.enabled=false"]  # C3's two stages
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        began = time.monotonic()
        proc = subprocess.Popen(torchrun + fit, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        while not list_checkpoints(run / "cc-stage" / "checkpoints"):
            if proc.poll() is not None:
                pytest.fail(f"torchrun ended early: {proc.stderr.read().decode()[-2000:]}")
            assert time.monotonic() - began < 60
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        kill_processes_mentioning(str(run))
        proc.wait()
        first = time.monotonic() - began
        wait_until_released(run)
        began = time.monotonic()
        resumed = subprocess.run(torchrun + ["fit", "--out", str(run), "--resume", "--no-progress", "--no-report",
                                             "--device", "cpu"], env=env, capture_output=True, text=True, timeout=120)
        second = time.monotonic() - began
    finally:
        hog.kill()
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "C3: resuming the CC stage" in resumed.stderr and "Received data size" not in resumed.stderr
    assert first + second <= 40.0 + START_UP_ALLOWANCE, (first, second)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["wall_seconds"] <= 40.0  # the run's own clock, across both processes and both stages
    assert metrics["nmi"] >= TORCHRUN_NMI_FLOOR, metrics["nmi"]
    for log in (run / "log.csv", run / "cc-stage" / "log.csv"):  # one writer: each epoch logged once
        epochs = [line.split(",")[0] for line in log.read_text().splitlines()[1:]]
        assert epochs == [str(e) for e in range(1, len(epochs) + 1)], log
