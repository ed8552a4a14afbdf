"""The one trainer every method uses: the epoch loop and the step.

Per step: index a batch of the device-resident data set, make both views with the batched
augmentation, run the method under autocast, gather its outputs over processes, sum its losses in
fp32, step. With ``instance_data`` (STL-10's unlabelled images) each epoch first passes over those
with the method's instance loss alone, then over the data to cluster (CC's two-pass schedule). No
DataLoader, no per-sample Python, no host syncs inside the step: the loss is read back (and checked
for NaN) only every ``log_every`` steps.

Its rooms: where the data lives (``streaming.py``, with the step's memory measured by ``memory.py``),
the time budget while it trains (``budget_watch.py``), its state in a checkpoint and its log
(``state.py``), what it leaves in its folder (``outputs.py``), inference (``inference.py``).
"""
from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import torch

from contraclust.augment import build_augmenter
from contraclust.augment.neighbours import NeighbourPartner, search_neighbours_once
from contraclust.config import RunConfig
from contraclust.console import progress_bar, say
from contraclust.data import Samples
from contraclust.errors import ConfigError, TrainingDiverged
from contraclust.methods import ClusteringMethod, build_method, get_method
from contraclust.metrics import evaluate_clustering
from contraclust.readout import Readout, map_rows, save_readout
from contraclust.threads import torch_tuner
import contraclust.training.checkpoint as ckpt
from contraclust.training.budget import BudgetPlan, Following
from contraclust.training.budget_watch import BudgetWatch
from contraclust.training.device import autocast_context, autocast_dtype, configure_cuda, resolve_device
from contraclust.training.distributed import (
    DistContext, barrier, broadcast_buffers, broadcast_flag, check_distributed, gather, init_distributed, wrap_model,
)
from contraclust.training.inference import embed_samples, eval_starts, predict_probabilities
from contraclust.training.memory import check_model_fits, check_step_fits, measure_step_bytes
from contraclust.training.mined_neighbours import NeighbourMiner
from contraclust.training.outputs import write_run_outputs
from contraclust.training.schedule import LearningRateSchedule, build_optimizer
from contraclust.training.state import append_log, restore_trainer_state, resume_trainer, rewrite_log, trainer_state
from contraclust.training.streaming import place_data, row_sets


@dataclass
class TrainResult:
    labels: np.ndarray
    probabilities: np.ndarray
    metrics: dict[str, float]
    epochs: int
    wall_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


class TrainingBatch(NamedTuple):
    """One step's samples on the device: this process's rows of the global batch, the samples behind
    each row's second view when that is a nearest neighbour, and whether the step trains the
    instance loss alone (an extra unlabelled pass)."""

    samples: torch.Tensor
    rows: torch.Tensor
    instance_only: bool
    partner: torch.Tensor | None = None


def require_samples(data: Samples) -> None:
    """Clustering needs at least two samples."""
    if len(data) < 2:
        raise ConfigError(f"the data has {len(data)} sample(s) (n_samples = {len(data)}); clustering needs at least 2")


def check_data(config: RunConfig, data: Samples) -> None:
    """Refuse what cannot be clustered before anything is written: K < 2, K > N, a batch larger than N."""
    config.validate()
    require_samples(data)
    n = len(data)
    if config.n_clusters > n:
        raise ConfigError(f"{config.n_clusters} clusters requested but the data has only {n} samples")
    if config.train.batch_size > n:
        raise ConfigError(f"batch size {config.train.batch_size} is larger than the {n} samples; lower --batch-size")


def initial_weights(init: str | Path, config: RunConfig, sample_shape: tuple[int, ...]) -> dict:
    """The model weights of run or checkpoint ``init``, refused (one error) unless they cover the whole
    backbone that ``config`` builds for samples of ``sample_shape``."""
    state = ckpt.load_checkpoint(init)["model"]
    build_method(config, sample_shape).load_initial_state(state)
    return state


class Trainer:
    """Trains ``config.method`` on ``data``; writes logs and checkpoints into ``out_dir`` if given."""

    def __init__(self, config: RunConfig, data: Samples, out_dir: str | Path | None = None,
                 device: str | torch.device | None = None, init_state: dict[str, torch.Tensor] | None = None,
                 started_at: float | None = None, clock: Callable[[], float] = time.monotonic,
                 instance_data: Samples | None = None, method: ClusteringMethod | None = None,
                 data_fingerprint: dict | None = None, following: Following | None = None,
                 prior_speed: tuple[float, float] | None = None, threads: int | None = None):
        """``started_at``: the ``clock()`` reading at which the run began (default: now): a time budget
        counts from it, and so does each log row's ``wall_seconds``, the time of the whole run (for C3,
        its CC stage included). Resuming moves it back by the time the run had spent before.
        ``instance_data``: extra images of the same shape that train the instance loss only.
        ``method``: a model built by the caller (e.g. suggest-k's heads of many K) instead of
        ``config.method``'s. ``data_fingerprint``: the data's (``data/fingerprint.py``), kept in the
        checkpoints so that a resume can check it trains on the same data. ``following``: a stage after this
        one inside the same time budget (``budget.Following``), which this one leaves room for;
        ``prior_speed``: (seconds a step, seconds an evaluation) measured by the stage before on the same
        network and data, so that a budgeted run plans without calibrating again. ``threads``: the CPU
        thread count the stage before settled on, kept without probing again (``threads.ThreadTuner``)."""
        self.clock = clock
        self.started_at = clock() if started_at is None else started_at
        self.following, self.prior_speed = following, prior_speed
        self.budget_watch: BudgetWatch | None = None  # during and after fit: the time budget's state
        check_data(config, data)
        self.config = config
        self.device = resolve_device(device)  # under torchrun: cuda:$LOCAL_RANK
        configure_cuda(self.device)
        self.dist: DistContext = init_distributed(self.device)
        self.out_dir = Path(out_dir) if out_dir else None
        self.data = data
        self.data_fingerprint = data_fingerprint
        train = config.train
        check_distributed(config, self.dist, self.device)
        self.local_batch = train.batch_size // self.dist.world_size
        n = len(data)
        self.cluster_steps = n // train.batch_size if train.drop_last else math.ceil(n / train.batch_size)
        self.instance_steps = _instance_steps(config, data, instance_data)
        self.steps_per_epoch = self.instance_steps + self.cluster_steps

        random.seed(train.seed + self.dist.rank)
        np.random.seed((train.seed + self.dist.rank) % 2**32)
        torch.manual_seed(train.seed + self.dist.rank)
        if method is None:
            check_model_fits(config, data.sample_shape, self.device)
        self.method = method if method is not None else build_method(config, data.sample_shape)
        if not data.is_image and hasattr(self.method.backbone, "fit_input"):
            self.method.backbone.fit_input(data.tensor)  # input statistics; a resumed or initial state replaces them
        if init_state is not None:
            loaded, total = self.method.load_initial_state(init_state)
            if self.dist.is_main:
                say(f"initial weights: loaded {loaded} of the model's {total} tensors (the whole backbone)")
        self.method.to(self.device)
        self.use_channels_last = train.channels_last and data.is_image
        if self.use_channels_last:
            self.method.to(memory_format=torch.channels_last)
        self.method, self.model, self.forward = wrap_model(self.method, self.dist, self.device, train)
        self.optimizer = build_optimizer(config.optim, self.method.parameters(), self.device)
        self.autocast_dtype = autocast_dtype(train.precision, self.device)
        step_bytes = measure_step_bytes(self.method, config.augment, data.tensor, data.is_image, self.device,
                                        self.local_batch, self.autocast, self.use_channels_last)
        self.source, self.instance_source, placement = place_data(
            data.tensor, instance_data.tensor if self.instance_steps else None, self.device, train, lambda: step_bytes)
        check_step_fits(step_bytes, self.device, self.local_batch)
        if self.dist.is_main:
            say(placement)
        self.samples = self.source.samples  # on the device when resident, in host memory when streamed
        self.augment = build_augmenter(config.augment, data.is_image, self.samples, self.device)
        # Parameters are drawn eagerly (a Generator does not compile); applying them is one pure function.
        on_cuda = self.device.type == "cuda"
        self.apply_views = torch.compile(self.augment.apply) if train.compile_augment and on_cuda else self.augment.apply
        self.partner = self._neighbour_partner()
        self.miner = NeighbourMiner(config.augment, train.seed) if data.is_image and config.augment.neighbours else None
        # One generator orders the data identically on every rank; another draws each rank's augmentations.
        self.order_generator = torch.Generator(device=self.device).manual_seed(train.seed)
        self.augment_generator = torch.Generator(device=self.device).manual_seed(train.seed * 1_000_003 + self.dist.rank)
        self.start_epoch = 0
        self.start_step = 0
        self.history: list[dict[str, Any]] = []
        optim = config.optim
        self.schedule = LearningRateSchedule(optim.lr, train.epochs * self.steps_per_epoch,
                                             int(optim.warmup_epochs * self.steps_per_epoch), optim.schedule,
                                             optim.min_lr_ratio)
        self.budget_plan: BudgetPlan | None = None
        # a CPU's threads chosen from the measured step speed (threads.py); None on CUDA or where the user set them
        self.threads = torch_tuner(f"{config.method} training steps", "steps", self.device.type, warmup=2,
                                   settled=threads)
        self.last_lr = self.lr_at(self.start_step)  # the learning rate of the last step taken
        self.train_seconds = 0.0  # in this process: the step loops alone, for images per second
        self.images_trained = 0

    # ----------------------------------------------------------------------------------- state
    def state(self, epoch: int, step: int) -> dict[str, Any]:
        return trainer_state(self, epoch, step)

    def load_state(self, state: dict[str, Any]) -> None:
        restore_trainer_state(self, state)

    def resume(self, path: str | Path | None = None) -> bool:
        """Continue from the newest readable checkpoint under ``path`` (default: this run's folder), which
        must be of this run's method, K and backbone. False when there is none yet."""
        return resume_trainer(self, path)

    # ----------------------------------------------------------------------------------- training
    def run_seconds(self) -> float:
        """Seconds the whole run has taken so far, across stages and resumes."""
        return self.clock() - self.started_at

    def lr_at(self, step: int) -> float:
        return self.schedule.at(step)

    def autocast(self):
        return autocast_context(self.autocast_dtype, self.device)

    def _neighbour_partner(self) -> NeighbourPartner | None:
        """For vectors with ``augment.neighbours`` = k: each sample's k nearest neighbours, found once, by
        cosine on the features with their mean removed, not on the model's standardised input: dividing by
        each feature's spread blows up near-constant features (MNIST's border pixels), and the share of
        the 10 neighbours in the sample's own class falls (benchmarks/frozen_features.py --neighbours:
        MNIST-5k 0.892 centred against 0.831 standardised, digits 0.960 against 0.931, MobileNetV2 features
        of CIFAR-10 0.573 against 0.572). (Images mine theirs while training: ``self.miner``.)"""
        k = self.config.augment.neighbours
        if self.data.is_image or k == 0:
            return None
        began = time.perf_counter()
        with torch.no_grad():
            features = self.samples.to(self.device).float()
            features = features - features.mean(dim=0)
            found = search_neighbours_once(features, k, seed=self.config.train.seed)
        if self.dist.is_main:
            say(f"nearest-neighbour positives: {found.indices.shape[1]} per sample by {found.describe()}, found "
                f"in {time.perf_counter() - began:.1f} s; the second view is a neighbour with p = "
                f"{self.config.augment.neighbour_p}")
        return NeighbourPartner(found.indices, self.config.augment.neighbour_p)

    def make_views(self, batch: torch.Tensor, partner: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Two augmented views: of ``batch``, and of ``partner`` (each row's neighbour) when given. The
        parameters are drawn on the device from the run's generator (eagerly), then applied."""
        second = batch if partner is None else partner
        if getattr(self.method, "clean_first_view", False):  # self-labelling: the sample as read out, and a view
            view_a = self.augment.eval_view(batch)
            view_b = self.apply_views(second, self.augment.draw(second, self.augment_generator))
            if self.use_channels_last:
                view_a = view_a.contiguous(memory_format=torch.channels_last)
                view_b = view_b.contiguous(memory_format=torch.channels_last)
            return view_a, view_b
        params = self.augment.draw(batch, self.augment_generator), self.augment.draw(second, self.augment_generator)
        return self.views_of(batch, second, *params)

    def views_of(self, batch: torch.Tensor, second: torch.Tensor, params_a, params_b) -> tuple[torch.Tensor, torch.Tensor]:
        """The views of ``batch`` and ``second`` with drawn parameters: pure tensor work (compiled on CUDA
        with ``train.compile_augment``)."""
        view_a, view_b = self.apply_views(batch, params_a), self.apply_views(second, params_b)
        if self.use_channels_last:
            view_a = view_a.contiguous(memory_format=torch.channels_last)
            view_b = view_b.contiguous(memory_format=torch.channels_last)
        return view_a, view_b

    def train_step(self, batch: torch.Tensor, step: int, partner: torch.Tensor | None = None,
                   instance_only: bool = False) -> dict[str, torch.Tensor]:
        """One optimiser step on a batch on the device: views, forward, gathered loss, update."""
        return self.step_on_views(*self.make_views(batch, partner), step, instance_only)

    def loss_on_views(self, view_a: torch.Tensor, view_b: torch.Tensor,
                      instance_only: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The method's forward under autocast, its outputs gathered over processes, its loss in fp32 on
        the global batch. A function of tensors with no host read: ``torch.compile(fullgraph=True)``
        takes it whole (tested), the CPU's proof that the step does not sync."""
        with self.autocast():
            outputs = self.forward(view_a, view_b)
        outputs = {k: gather(v.float()) for k, v in outputs.items()}
        if instance_only:
            loss, parts = self.method.instance_loss(outputs)
            return loss, {"unlabelled_instance": parts["instance"]}
        return self.method.loss(outputs)

    def step_on_views(self, view_a: torch.Tensor, view_b: torch.Tensor, step: int,
                      instance_only: bool = False) -> dict[str, torch.Tensor]:
        loss, parts = self.loss_on_views(view_a, view_b, instance_only)
        self.last_lr = self.lr_at(step)  # what log.csv records: the rate the step ran at
        for group in self.optimizer.param_groups:
            group["lr"] = self.last_lr
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}}

    def epoch_indices(self) -> torch.Tensor:
        n, batch = len(self.data), self.config.train.batch_size
        order = torch.randperm(n, generator=self.order_generator, device=self.device)
        if self.config.train.drop_last:
            order = order[: self.cluster_steps * batch]
        return order

    def epoch_batches(self):
        """A :class:`TrainingBatch` for each step of one epoch: the instance-only pass over
        ``instance_data`` first (when given), then the data to cluster. Every process draws the same
        global order and takes its own slice of each batch. Nearest-neighbour partners are drawn for the
        whole epoch at its start, so that a streamed set gathers them on its background thread too."""
        if self.instance_source is not None:
            order = torch.randperm(len(self.instance_source.samples), generator=self.order_generator,
                                   device=self.device)
            rows = self._local_rows(order, self.instance_steps)
            for (samples,), local in zip(self.instance_source.batches(row_sets(self.instance_source, rows)), rows):
                yield TrainingBatch(samples, local, True)
        rows = self._local_rows(self.epoch_indices(), self.cluster_steps)
        if self.partner is None:
            for (samples,), local in zip(self.source.batches(row_sets(self.source, rows)), rows):
                yield TrainingBatch(samples, local, False)
            return
        partners = [self.partner.pick(local, self.augment_generator) for local in rows]
        for (samples, partner), local in zip(self.source.batches(row_sets(self.source, rows, partners)), rows):
            yield TrainingBatch(samples, local, False, partner)

    def _local_rows(self, order: torch.Tensor, steps: int) -> list[torch.Tensor]:
        """This process's rows of each of ``steps`` global batches of ``order`` (on the device)."""
        batch, dist = self.config.train.batch_size, self.dist
        return [order[i * batch: (i + 1) * batch].tensor_split(dist.world_size)[dist.rank] for i in range(steps)]

    def fit(self, on_epoch_end: Callable[[dict[str, Any]], bool] | None = None) -> TrainResult:
        """Train to the planned step (``config.train.epochs``, or what fits ``train.budget_seconds``).
        ``on_epoch_end(row)`` sees each log row and may return True to stop early (after the epoch's
        checkpoint)."""
        train = self.config.train
        if self.out_dir and self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            rewrite_log(self.out_dir / "log.csv", self.history)
        budget = self.budget_watch = BudgetWatch(self)
        step, epoch = self.start_step, self.start_epoch
        bar = progress_bar(None if budget.calibrating else self.schedule.total_steps - step,
                           enabled=train.progress and self.dist.is_main, desc=f"{self.config.method} training")
        last_prediction: tuple[int, np.ndarray, np.ndarray] | None = None  # (epoch, labels, probabilities)
        while step < self.schedule.total_steps:
            epoch += 1
            if self.miner is not None and self.miner.due(epoch, step, self.schedule.total_steps):
                self.partner = self.miner.mine(self, epoch)
            self.model.train()
            totals: dict[str, torch.Tensor] = {}
            counts: dict[str, int] = {}
            done = shown = 0
            loop_began = time.perf_counter()
            for i, batch in enumerate(self.epoch_batches()):
                if step >= self.schedule.total_steps:
                    break
                with self.threads.timed() if self.threads else contextlib.nullcontext():
                    parts = self.train_step(batch.samples, step, batch.partner, batch.instance_only)
                for k, v in parts.items():
                    totals[k] = totals.get(k, 0) + v
                    counts[k] = counts.get(k, 0) + 1
                step, done = step + 1, i + 1
                budget.step_done()
                if done % train.log_every == 0 or done == self.steps_per_epoch or step >= self.schedule.total_steps:
                    verdict = budget.at_log_point(step, totals["loss"] / counts["loss"])  # the loss's one read-back
                    if verdict.diverged:
                        bar.close()
                        raise TrainingDiverged(
                            f"the loss became {verdict.loss} at epoch {epoch}, step {done}; lower the learning "
                            f"rate or check the data; {ckpt.last_good_checkpoint(self.out_dir)}")
                    if verdict.changes_length:
                        bar.set_total(self.schedule.total_steps - self.start_step)
                    bar.set_postfix(epoch=epoch, loss=f"{verdict.loss:.4f}", refresh=False)
                    bar.update(done - shown)
                    shown = done
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.train_seconds += time.perf_counter() - loop_began
            self.images_trained += done * train.batch_size
            finished = step >= self.schedule.total_steps
            evaluation_began = self.clock()
            checkpointed = None  # its seconds, when one is written
            row = {"epoch": epoch, "lr": self.last_lr}
            row.update({k: float(v) / counts[k] for k, v in totals.items()})
            if self.data.labels is not None and train.eval_every and (epoch % train.eval_every == 0 or finished):
                last_prediction = (epoch, *self.predict())
                row.update(evaluate_clustering(self.data.labels, last_prediction[1]))
                budget.evaluated(self.clock() - evaluation_began)
                bar.set_postfix(epoch=epoch, loss=f"{row['loss']:.4f}", nmi=f"{row['nmi']:.3f}", refresh=False)
            row["wall_seconds"] = round(self.run_seconds(), 3)
            self.history.append(row)
            if self.out_dir and self.dist.is_main:
                append_log(self.out_dir / "log.csv", row)
                if epoch % train.checkpoint_every == 0 or finished:
                    writing_began = self.clock()
                    ckpt.save_checkpoint(self.out_dir / "checkpoints", epoch, self.state(epoch, step))
                    checkpointed = self.clock() - writing_began
            barrier()
            budget.after_epoch(self.clock() - evaluation_began, checkpointed)
            if on_epoch_end is not None and broadcast_flag(bool(on_epoch_end(row))):
                break
        bar.close()
        if last_prediction is not None and self.history and last_prediction[0] == self.history[-1]["epoch"]:
            _, labels, probabilities = last_prediction  # the last epoch was just evaluated: no second pass
        else:
            labels, probabilities = self.predict()
        metrics = evaluate_clustering(self.data.labels, labels) if self.data.labels is not None else {}
        result = TrainResult(labels, probabilities, metrics, epoch, self.run_seconds(), self.history)
        if self.out_dir and self.dist.is_main:
            write_run_outputs(self.out_dir, result, self.data.labels, self.device, self.budget_plan,
                              getattr(self.data, "paths", None), getattr(self.data, "ids", None),
                              self.config.uncertain_below)
            rows = map_rows(len(self.data))
            save_readout(self.out_dir, Readout(probabilities, rows, self.embed(rows)))
        return result

    @torch.no_grad()
    def embed(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), D) embeddings of the training set's ``rows``, as the evaluations run (this process only)."""
        samples = self.data.tensor[torch.as_tensor(rows, dtype=torch.long)]
        return embed_samples(self.method, self.augment, samples, self.config.train.eval_batch_size, self.autocast,
                             self.use_channels_last)

    @torch.no_grad()
    def predict(self, samples: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cluster labels and (N, K) probabilities of the training set (or of ``samples``); the work is
        split over processes, and a streamed set is read through its background thread as in training."""
        if self.dist.enabled:
            broadcast_buffers(self.method)  # every rank reads out with rank 0's BatchNorm statistics
        batches = None
        if samples is None and self.source.placement == "streaming":
            size = self.config.train.eval_batch_size
            starts = eval_starts(len(self.data), size, self.dist)
            rows = [torch.arange(s, min(s + size, len(self.data)))[None] for s in starts]
            batches = ((start, gathered[0]) for start, gathered in zip(starts, self.source.batches(rows)))
        return predict_probabilities(self.method, self.augment, self.samples if samples is None else samples,
                                     self.config.train.eval_batch_size, self.autocast, self.use_channels_last,
                                     self.dist, batches)


def _instance_steps(config: RunConfig, data: Samples, instance_data: Samples | None) -> int:
    """Steps of the instance-only pass per epoch; its images must match the data to cluster."""
    if instance_data is None:
        return 0
    if not get_method(config.method).has_instance_loss:
        raise ConfigError(f"{config.method} has no instance-level loss to train the extra unlabelled images with")
    if instance_data.sample_shape != data.sample_shape:
        raise ConfigError(f"the extra unlabelled images are {instance_data.sample_shape}, the data to cluster "
                          f"{data.sample_shape}; they must be alike")
    return len(instance_data) // config.train.batch_size
