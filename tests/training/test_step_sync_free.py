"""The training step of every method reads nothing back to the host, and compiles whole.

Two proofs that run on a CPU. First, a dispatch mode watches every operator of the step (views, forward,
gathered loss, backward) for the ones that hand a tensor's value to Python (``.item()``, ``int()``,
``bool()`` of a tensor: ``aten._local_scalar_dense``), that build a tensor from host data (``torch.tensor``:
``aten.lift_fresh``, a blocking copy to a GPU) or whose output shape depends on the data (``nonzero``): on
CUDA each is a host sync. (On torch 2.13 ``fullgraph=True`` alone would not catch ``int(buffer)``: dynamo
guards on the value instead, and the guard reads it back at every call.) Second,
``torch.compile(..., fullgraph=True)`` refuses any graph break. The compiled part is the trainer's own
``views_of`` + ``loss_on_views``: the views from drawn parameters, the forward under the run's autocast,
the gathered outputs and the method's loss, with every buffer it updates (CC's running head losses,
CLC's Sinkhorn queue); AOTAutograd traces its backward too. The optimiser's step is PyTorch's fused
implementation and is left eager (PyTorch's own ``step`` breaks the graph on purpose). The drawing of the
parameters stays eager too: it uses a Generator, and it is the one part that does not compile.
``aot_eager`` checks the graph capture without inductor's code generation (which needs minutes here).
"""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from contraclust.data import read_mnist5k, read_sklearn_digits
from contraclust.data.readers import features_from_array
from contraclust.presets import build_config
from contraclust.training import Trainer
from helpers import TINY

METHODS = {"cc": ["method.cluster_heads=3"], "c3": [], "drc": [], "clc": ["method.sinkhorn_queue=64"]}


def digit_images(n=128):
    data = read_mnist5k()
    data.images, data.labels = data.images[:n], data.labels[:n]
    return data


def two_trainers(method, data, preset="mnist5k-cpu", extra=()):
    """Two identical trainers (same seed, same weights): one runs eagerly, one compiled."""
    config = lambda: build_config(method, preset, n_clusters=10, epochs=1, batch_size=32, seed=0,  # noqa: E731
                                  overrides=TINY + ["train.progress=false", "train.precision=fp32"] + METHODS[method]
                                  + list(extra))
    return Trainer(config(), data, None, "cpu"), Trainer(config(), data, None, "cpu")


def run_steps(eager, compiled_trainer, steps=3):
    torch._dynamo.reset()

    def views_and_loss(trainer):
        return lambda batch, a, b: trainer.loss_on_views(*trainer.views_of(batch, batch, a, b))[0]

    compiled = torch.compile(views_and_loss(compiled_trainer), fullgraph=True, backend="aot_eager")
    generator = torch.Generator().manual_seed(1)
    batch = eager.samples[:32]
    for step in range(steps):  # the loss may differ in its last digits: the compiled graph rounds once less
        params = eager.augment.draw(batch, generator), eager.augment.draw(batch, generator)
        losses = []
        for trainer, fn in ((eager, views_and_loss(eager)), (compiled_trainer, compiled)):
            loss = fn(batch, *params)
            trainer.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            trainer.optimizer.step()
            losses.append(loss.detach())
        assert torch.isfinite(losses[0]) and torch.allclose(losses[0], losses[1], atol=1e-3, rtol=1e-3), step
    return eager.method.state_dict(), compiled_trainer.method.state_dict()


@pytest.mark.parametrize("method", list(METHODS))
def test_every_methods_step_compiles_whole_and_computes_the_eager_step(method):
    eager_state, compiled_state = run_steps(*two_trainers(method, digit_images()))
    for key in ("head_losses", "head_updates", "queue", "queue_filled"):
        if key in eager_state:  # the buffers the loss updates were updated inside the compiled graph too
            assert torch.allclose(eager_state[key].float(), compiled_state[key].float(), atol=1e-3), key
    if method == "clc":
        assert int(compiled_state["queue_filled"]) == 64  # three steps of 32 filled the 64-row queue


def test_the_vector_step_compiles_whole_too():
    """The MLP, its input normalisation and the feature views (noise scaled by each feature's spread)."""
    digits = read_sklearn_digits()
    vectors = features_from_array(digits.images.reshape(len(digits), -1).float().numpy(), digits.labels)
    run_steps(*two_trainers("cc", vectors, "features-cpu", ["augment.neighbours=0"]))


def test_the_step_compiles_whole_under_bf16_autocast():
    eager, compiled = two_trainers("cc", digit_images(), extra=["train.precision=bf16"])
    run_steps(eager, compiled, steps=2)


HOST_READS = {"_local_scalar_dense", "lift_fresh", "nonzero", "masked_select", "_unique2", "unique_dim",
              "unique_consecutive"}


class HostReads(TorchDispatchMode):
    """Records the operators of ``HOST_READS`` that run inside it."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__.split(".")[0] in HOST_READS:
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("method", list(METHODS))
def test_no_step_of_any_method_reads_a_value_back_to_the_host(method):
    """Three steps, so that the first-step cases (CC's first head-loss update, CLC's empty queue) and the
    later ones are both watched. The optimiser's step is left out: PyTorch's fused Adam on CUDA reads
    nothing back, its CPU implementation reads its step count."""
    trainer, _ = two_trainers(method, digit_images())
    batch = trainer.samples[:32]
    for step in range(3):
        watch = HostReads()
        with watch:
            loss, _ = trainer.loss_on_views(*trainer.make_views(batch))
            trainer.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        trainer.optimizer.step()
        assert watch.seen == [], (method, step, watch.seen)


def test_an_epoch_on_vectors_with_neighbour_partners_reads_nothing_back_either():
    """The epoch's order, its batches, the partners drawn for the whole epoch, the feature views and steps."""
    digits = read_sklearn_digits()
    vectors = features_from_array(digits.images.reshape(len(digits), -1).float().numpy(), digits.labels)
    trainer, _ = two_trainers("cc", vectors, "features-cpu", ["augment.neighbours=5", "augment.neighbour_p=0.5"])
    watch = HostReads()
    with watch:
        for step, batch in zip(range(4), trainer.epoch_batches()):
            assert batch.partner is not None
            loss, _ = trainer.loss_on_views(*trainer.make_views(batch.samples, batch.partner))
            loss.backward()
    assert watch.seen == []
