"""Two gloo processes on a batch split in two give the loss and gradients of one process on the whole batch."""
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

from contraclust import losses
from contraclust.errors import ContraclustError
from contraclust.training.checkpoint import list_checkpoints, load_checkpoint
from contraclust.training.run_folder import RunLock
from contraclust.training.distributed import gather
from helpers import ROOT, TINY, mnist_subset

N, WORLD = 16, 2


def loss_cases():
    """name -> (function of a dict of per-sample tensors, the tensors' shapes)."""
    k = 5
    return {
        "nt_xent": (lambda t: losses.nt_xent(F.normalize(t["a"], dim=1), F.normalize(t["b"], dim=1), 0.5),
                    {"a": (N, 8), "b": (N, 8)}),
        "cluster_contrast+entropy": (
            lambda t: losses.cluster_contrast(t["a"].softmax(1), t["b"].softmax(1), 1.0)
            + losses.marginal_entropy_penalty(t["a"].softmax(1)) + losses.marginal_entropy_penalty(t["b"].softmax(1)),
            {"a": (N, k), "b": (N, k)}),
        "cross_instance": (lambda t: losses.cross_instance_loss(F.normalize(t["a"], dim=1),
                                                                 F.normalize(t["b"], dim=1), 0.3, 1.0),
                           {"a": (N, 8), "b": (N, 8)}),
        "assignment_feature": (lambda t: losses.assignment_feature_loss(t["a"], t["b"], 0.5), {"a": (N, k), "b": (N, k)}),
        "assignment_probability+regularisers": (
            lambda t: losses.assignment_probability_loss(t["a"].softmax(1), t["b"].softmax(1))
            + losses.squared_mass_regulariser(t["a"].softmax(1)) + losses.entropy_regulariser(t["b"].softmax(1)),
            {"a": (N, k), "b": (N, k)}),
        "sinkhorn+split_contrastive": (
            lambda t: losses.split_contrastive_loss(losses.sinkhorn(t["la"], 0.5, 3), t["va"],
                                                    losses.sinkhorn(t["lb"], 0.5, 3), t["vb"], 0.5),
            {"la": (N, k), "lb": (N, k), "va": (N, 8), "vb": (N, 8)}),
    }


def make_inputs(shapes):
    g = torch.Generator().manual_seed(0)
    return {name: torch.randn(shape, generator=g, dtype=torch.float64) for name, shape in shapes.items()}


def worker(rank, init_file, results):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    out = {}
    for name, (fn, shapes) in loss_cases().items():
        full = make_inputs(shapes)
        local = {k: v.chunk(WORLD)[rank].clone().requires_grad_() for k, v in full.items()}
        loss = fn({k: gather(v) for k, v in local.items()})
        loss.backward()
        # DDP averages parameter gradients over ranks: the per-rank gradient / WORLD is what a
        # parameter upstream of this rank's rows receives.
        out[name] = (loss.item(), {k: (v.grad / WORLD) for k, v in local.items()})
    results[rank] = out
    dist.destroy_process_group()


def test_two_processes_equal_one_big_batch(tmp_path):
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(worker, args=(str(tmp_path / "init"), results), nprocs=WORLD, join=True)
    for name, (fn, shapes) in loss_cases().items():
        full = {k: v.requires_grad_() for k, v in make_inputs(shapes).items()}
        loss = fn(full)
        loss.backward()
        for rank in range(WORLD):
            rank_loss, rank_grads = results[rank][name]
            assert abs(rank_loss - loss.item()) < 1e-5, name
            for key, grad in rank_grads.items():
                expected = full[key].grad.chunk(WORLD)[rank]
                assert torch.allclose(grad, expected, atol=1e-5), (name, key, (grad - expected).abs().max())


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
