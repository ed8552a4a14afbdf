"""The one trainer every method uses.

Per step: index a batch of the device-resident data set, make both views with the batched
augmentation, run the method under autocast, gather its outputs over processes, sum its losses in
fp32, step. With ``instance_data`` (STL-10's unlabelled images) each epoch first passes over those
with the method's instance loss alone, then over the data to cluster (CC's two-pass schedule). A set
too large for the device is streamed from host memory instead (``streaming.py``). No DataLoader, no
per-sample Python, no host syncs inside the step: the loss is read back (and checked for NaN) only
every ``log_every`` steps.
"""
from __future__ import annotations

import csv
import inspect
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
from torch import nn

from contraclust.augment import build_augmenter
from contraclust.augment.neighbours import NeighbourPartner, nearest_neighbours
from contraclust.config import RunConfig
from contraclust.console import progress_bar, say
from contraclust.data import Samples
from contraclust.errors import ConfigError, TrainingDiverged
from contraclust.methods import ClusteringMethod, get_method
from contraclust.metrics import evaluate_clustering
from contraclust.models import build_backbone
from contraclust.report.assignments import write_assignments
from contraclust.training import checkpoint as ckpt
from contraclust.training.budget import BudgetKeeper, BudgetPlan, RunShape
from contraclust.training.device import (
    autocast_context, autocast_dtype, configure_cuda, peak_device_memory_mb, peak_host_memory_mb, resolve_device,
)
from contraclust.training.inference import eval_starts, predict_probabilities
from contraclust.training.memory import activation_bytes_per_sample, step_bytes
from contraclust.training.distributed import (
    DistContext, barrier, broadcast_buffers, broadcast_flag, broadcast_object, gather, init_distributed,
)
from contraclust.training.schedule import LearningRateSchedule
from contraclust.training.streaming import choose_placement, make_source


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
    each row's second view when that is a nearest neighbour (vectors), and whether the step trains the
    instance loss alone (an extra unlabelled pass)."""

    samples: torch.Tensor
    rows: torch.Tensor
    instance_only: bool
    partner: torch.Tensor | None = None


def build_method(config: RunConfig, sample_shape: tuple[int, ...]) -> ClusteringMethod:
    cls = get_method(config.method)
    backbone = build_backbone(config.model, sample_shape)
    return cls(backbone, config.n_clusters, config.method_options, config.model)


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


class Trainer:
    """Trains ``config.method`` on ``data``; writes logs and checkpoints into ``out_dir`` if given."""

    def __init__(self, config: RunConfig, data: Samples, out_dir: str | Path | None = None,
                 device: str | torch.device | None = None, init_state: dict[str, torch.Tensor] | None = None,
                 started_at: float | None = None, clock: Callable[[], float] = time.monotonic,
                 instance_data: Samples | None = None, method: ClusteringMethod | None = None):
        """``started_at``: the ``clock()`` reading at which the run began (default: now): a time budget
        counts from it, and so does each log row's ``wall_seconds``, the time of the whole run (for C3,
        its CC stage included). Resuming moves it back by the time the run had spent before.
        ``instance_data``: extra images of the same shape that train the instance loss only.
        ``method``: a model built by the caller (e.g. suggest-k's heads of many K) instead of
        ``config.method``'s."""
        self.clock = clock
        self.started_at = clock() if started_at is None else started_at
        check_data(config, data)
        self.config = config
        self.device = resolve_device(device)  # under torchrun: cuda:$LOCAL_RANK
        configure_cuda(self.device)
        self.dist: DistContext = init_distributed(self.device)
        self.out_dir = Path(out_dir) if out_dir else None
        self.data = data
        train = config.train
        _check_distributed(config, self.dist, self.device)
        self.local_batch = train.batch_size // self.dist.world_size
        n = len(data)
        self.cluster_steps = n // train.batch_size if train.drop_last else math.ceil(n / train.batch_size)
        self.instance_steps = _instance_steps(config, data, instance_data)
        self.steps_per_epoch = self.instance_steps + self.cluster_steps

        _seed_everything(train.seed + self.dist.rank)
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
        sync_batchnorm = self.dist.enabled and train.sync_batchnorm
        if sync_batchnorm:
            self.method = nn.SyncBatchNorm.convert_sync_batchnorm(self.method)
        self.model: nn.Module = self.method
        if self.dist.enabled:
            # Buffers (BatchNorm's running statistics) are not broadcast at every forward: only evaluation
            # reads them, and ``predict`` takes rank 0's first. The others (CLC's queue, CC's head losses, the
            # cluster prior) are computed from the gathered global batch, hence equal on every rank.
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.method, device_ids=ids, **_NO_FORWARD_BUFFER_SYNC)
        on_cuda = self.device.type == "cuda"
        compile_model = train.compile and on_cuda and not sync_batchnorm  # SyncBatchNorm and compile kept apart
        if train.compile and on_cuda and sync_batchnorm and self.dist.is_main:
            say("train.compile is off for the model: SyncBatchNorm's collectives do not compile")
        self.forward = torch.compile(self.model) if compile_model else self.model
        self.optimizer = _build_optimizer(config, self.method.parameters(), self.device)
        self.autocast_dtype = autocast_dtype(train.precision, self.device)
        self.source, self.instance_source = self._place_data(data, instance_data if self.instance_steps else None)
        self.samples = self.source.samples  # on the device when resident, in host memory when streamed
        self.augment = build_augmenter(config.augment, data.is_image, self.samples, self.device)
        # Parameters are drawn eagerly (a Generator does not compile); applying them is one pure function.
        self.apply_views = torch.compile(self.augment.apply) if train.compile_augment and on_cuda else self.augment.apply
        self.partner = self._neighbour_partner()
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
        self.train_seconds = 0.0  # in this process: the step loops alone, for images per second
        self.images_trained = 0

    # ----------------------------------------------------------------------------------- state
    def state(self, epoch: int, step: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "step": step,
            "schedule": self.schedule.state(),
            "budget_plan": self.budget_plan.to_dict() if self.budget_plan else None,
            "model": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "order_generator": self.order_generator.get_state(),
            "augment_generator": self.augment_generator.get_state(),
            "generator_device": self.device.type,
            "rng": ckpt.global_rng_state(),
            "world_size": self.dist.world_size,
            "config": self.config.to_dict(),
            "history": self.history,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        step = int(state.get("step", int(state["epoch"]) * self.steps_per_epoch))
        seed = self.config.train.seed
        written_on = state.get("generator_device") or ckpt.generator_device_type(state["order_generator"])
        if written_on != self.device.type:
            # A CUDA generator's state (Philox) cannot be loaded into a CPU generator (Mersenne Twister) or
            # the reverse: both streams restart from (seed, step), so the run stays reproducible.
            self.order_generator.manual_seed(seed * 7919 + step)
            self.augment_generator.manual_seed(seed * 1_000_003 + step * 7919 + self.dist.rank)
            if self.dist.is_main:
                say(f"resuming on {self.device.type} a run whose random streams were on {written_on}: the data "
                    f"order and the views continue from streams re-seeded from the seed and step {step}")
        else:
            self.order_generator.set_state(state["order_generator"])
            if state.get("world_size", 1) == self.dist.world_size:
                self.augment_generator.set_state(state["augment_generator"])
            else:
                # A different number of processes: the data order continues exactly; augmentation
                # streams are re-seeded from (seed, epoch, rank), so the run stays reproducible.
                self.augment_generator.manual_seed(seed * 1_000_003 + state["epoch"] * 7919 + self.dist.rank)
        if state.get("world_size", 1) == self.dist.world_size == 1:
            ckpt.restore_global_rng_state(state["rng"])
        self.start_epoch = int(state["epoch"])
        self.start_step = step
        self.history = list(state.get("history", []))
        if self.history:
            self.started_at -= self.history[-1]["wall_seconds"]  # the time the run had spent before this process
        if state.get("budget_plan") and self.config.train.budget_seconds:
            self.budget_plan = BudgetPlan.from_dict(state["budget_plan"])  # a resumed run keeps its plan
            self.schedule = LearningRateSchedule(**state["schedule"])

    def resume(self, path: str | Path | None = None) -> bool:
        """Continue from the newest readable checkpoint under ``path`` (default: this run's folder), which
        must be of this run's method, K and backbone. False when there is none yet."""
        target = Path(path) if path else self.out_dir
        if target is None:
            return False
        directory = ckpt.checkpoint_folder(target)
        ckpt.remove_partial_writes(directory)
        if not ckpt.list_checkpoints(directory):
            return False
        state = ckpt.load_checkpoint(target, fall_back=True)
        ckpt.check_same_run(state, self.config, target)
        self.load_state(state)
        return True

    # ----------------------------------------------------------------------------------- training
    def run_seconds(self) -> float:
        """Seconds the whole run has taken so far, across stages and resumes."""
        return self.clock() - self.started_at

    def lr_at(self, step: int) -> float:
        return self.schedule.at(step)

    def autocast(self):
        return autocast_context(self.autocast_dtype, self.device)

    def _neighbour_partner(self) -> NeighbourPartner | None:
        """For vectors with ``augment.neighbours`` = k: each sample's k nearest neighbours (cosine on the
        model's normalised input), found once."""
        k = self.config.augment.neighbours
        if self.data.is_image or k == 0:
            return None
        began = time.perf_counter()
        with torch.no_grad():
            neighbours = nearest_neighbours(self.method.backbone.normalise(self.samples.to(self.device)), k)
        if self.dist.is_main:
            say(f"nearest-neighbour positives: {neighbours.shape[1]} per sample, found in "
                f"{time.perf_counter() - began:.1f} s; the second view is a neighbour with p = "
                f"{self.config.augment.neighbour_p}")
        return NeighbourPartner(neighbours, self.config.augment.neighbour_p)

    def make_views(self, batch: torch.Tensor, partner: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Two augmented views: of ``batch``, and of ``partner`` (each row's neighbour) when given. The
        parameters are drawn on the device from the run's generator (eagerly), then applied."""
        second = batch if partner is None else partner
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
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step)
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
            for (samples,), local in zip(self.instance_source.batches(self._row_sets(rows)), rows):
                yield TrainingBatch(samples, local, True)
        rows = self._local_rows(self.epoch_indices(), self.cluster_steps)
        if self.partner is None:
            for (samples,), local in zip(self.source.batches(self._row_sets(rows)), rows):
                yield TrainingBatch(samples, local, False)
            return
        partners = [self.partner.pick(local, self.augment_generator) for local in rows]
        for (samples, partner), local in zip(self.source.batches(self._row_sets(rows, partners)), rows):
            yield TrainingBatch(samples, local, False, partner)

    def _local_rows(self, order: torch.Tensor, steps: int) -> list[torch.Tensor]:
        """This process's rows of each of ``steps`` global batches of ``order`` (on the device)."""
        batch, dist = self.config.train.batch_size, self.dist
        return [order[i * batch: (i + 1) * batch].tensor_split(dist.world_size)[dist.rank] for i in range(steps)]

    def _row_sets(self, *per_step: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per step an (m, b) tensor of the rows to gather (the batch, and its partners when given), as the
        data source takes them: moved to the host at once for a streamed set (one copy per epoch; its
        background thread gathers from host memory), left on the device for a resident one."""
        sets = [torch.stack(rows) for rows in zip(*per_step)]
        if self.source.placement != "streaming" or not sets:
            return sets
        if len({s.shape for s in sets}) == 1:
            return list(torch.stack(sets).cpu().unbind())
        return [s.cpu() for s in sets]  # a short last batch (drop_last off)

    def _place_data(self, data: Samples, instance_data: Samples | None):
        """The sources of the data (and the extra instance data): resident or streamed (``streaming``)."""
        train = self.config.train
        nbytes = data.tensor.nbytes + (instance_data.tensor.nbytes if instance_data is not None else 0)
        measured = train.data_placement == "auto" and not train.data_memory_limit_mb
        placement, reason = choose_placement(nbytes, self.device, train.data_placement, train.data_memory_limit_mb,
                                             self._step_bytes(data) if measured else 0)
        if self.dist.is_main:
            how = ("one index per batch" if placement == "resident" else
                   "batches gathered by a background thread" + (", pinned and copied asynchronously"
                                                                 if self.device.type == "cuda" else ""))
            say(f"data: {placement} ({how}): {reason}")
        return (make_source(data.tensor, self.device, placement),
                make_source(instance_data.tensor, self.device, placement) if instance_data is not None else None)

    def _step_bytes(self, data: Samples) -> int:
        """The device memory a training step needs besides the data: the model state and the activations
        of this process's batch, measured on two views of two samples (``memory.py``; with a generator
        of its own, so the run's random streams are untouched)."""
        probe = data.tensor[: min(2, len(data))].to(self.device)
        augment = build_augmenter(self.config.augment, data.is_image, probe, self.device)
        generator = torch.Generator(device=self.device).manual_seed(0)
        views = [augment(probe, generator) for _ in range(2)]
        if self.use_channels_last:
            views = [v.contiguous(memory_format=torch.channels_last) for v in views]
        return step_bytes(self.method, activation_bytes_per_sample(self.method, *views, self.autocast),
                          self.local_batch)

    def fit(self, on_epoch_end: Callable[[dict[str, Any]], bool] | None = None) -> TrainResult:
        """Train to the planned step (``config.train.epochs``, or what fits ``train.budget_seconds``).
        ``on_epoch_end(row)`` sees each log row and may return True to stop early (after the epoch's
        checkpoint)."""
        train = self.config.train
        if self.out_dir and self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.json").write_text(self.config.to_json())
            _rewrite_log(self.out_dir / "log.csv", self.history)
        keeper = self._budget_keeper()
        step, epoch = self.start_step, self.start_epoch
        bar = progress_bar(None if keeper and keeper.calibrating else self.schedule.total_steps - step,
                           enabled=train.progress and self.dist.is_main, desc=f"{self.config.method} training")
        last_prediction: tuple[int, np.ndarray, np.ndarray] | None = None  # (epoch, labels, probabilities)
        while step < self.schedule.total_steps:
            epoch += 1
            self.model.train()
            totals: dict[str, torch.Tensor] = {}
            counts: dict[str, int] = {}
            done = shown = 0
            loop_began = time.perf_counter()
            for i, batch in enumerate(self.epoch_batches()):
                if step >= self.schedule.total_steps:
                    break
                parts = self.train_step(batch.samples, step, batch.partner, batch.instance_only)
                for k, v in parts.items():
                    totals[k] = totals.get(k, 0) + v
                    counts[k] = counts.get(k, 0) + 1
                step, done = step + 1, i + 1
                if keeper and keeper.calibrating and self.dist.is_main:
                    keeper.step_done()
                if done % train.log_every == 0 or done == self.steps_per_epoch or step >= self.schedule.total_steps:
                    # The loss is read back here only. Rank 0 judges it and the budget; every rank acts on
                    # its verdict at this same step, so the collectives that follow agree on every rank.
                    verdict = self._judge(keeper, step, totals["loss"] / counts["loss"])
                    if verdict["diverged"]:
                        bar.close()
                        raise TrainingDiverged(
                            f"the loss became {verdict['loss']} at epoch {epoch}, step {done}; lower the learning "
                            f"rate or check the data; the last good checkpoint is kept in the run folder")
                    if verdict["plan"]:
                        self._plan_budget(keeper, step)
                        bar.set_total(self.schedule.total_steps - self.start_step)
                    elif verdict["total"] is not None:
                        self._replan(verdict["total"], step)
                        bar.set_total(self.schedule.total_steps - self.start_step)
                    bar.set_postfix(epoch=epoch, loss=f"{verdict['loss']:.4f}", refresh=False)
                    bar.update(done - shown)
                    shown = done
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.train_seconds += time.perf_counter() - loop_began
            self.images_trained += done * train.batch_size
            finished = step >= self.schedule.total_steps
            evaluation_began = self.clock()
            row = {"epoch": epoch, "lr": self.lr_at(step - 1)}
            row.update({k: float(v) / counts[k] for k, v in totals.items()})
            if self.data.labels is not None and train.eval_every and (epoch % train.eval_every == 0 or finished):
                last_prediction = (epoch, *self.predict())
                row.update(evaluate_clustering(self.data.labels, last_prediction[1]))
                bar.set_postfix(epoch=epoch, loss=f"{row['loss']:.4f}", nmi=f"{row['nmi']:.3f}", refresh=False)
            row["wall_seconds"] = round(self.run_seconds(), 3)
            self.history.append(row)
            if self.out_dir and self.dist.is_main:
                _append_log(self.out_dir / "log.csv", row)
                if epoch % train.checkpoint_every == 0 or finished:
                    ckpt.save_checkpoint(self.out_dir / "checkpoints", epoch, self.state(epoch, step))
            barrier()
            if keeper:
                keeper.exclude(self.clock() - evaluation_began)
            if on_epoch_end is not None and broadcast_flag(bool(on_epoch_end(row))):
                break
        bar.close()
        if last_prediction is not None and self.history and last_prediction[0] == self.history[-1]["epoch"]:
            _, labels, probabilities = last_prediction  # the last epoch was just evaluated: no second pass
        else:
            labels, probabilities = self.predict()
        metrics = evaluate_clustering(self.data.labels, labels) if self.data.labels is not None else {}
        wall = self.run_seconds()
        result = TrainResult(labels, probabilities, metrics, epoch, wall, self.history)
        if self.out_dir and self.dist.is_main:
            write_run_outputs(self.out_dir, result, self.data.labels, self.device, self.budget_plan,
                              getattr(self.data, "paths", None), getattr(self.data, "ids", None),
                              self.config.uncertain_below)
        return result

    # ----------------------------------------------------------------------------------- time budget
    def _budget_keeper(self) -> BudgetKeeper | None:
        """A keeper when ``train.budget_seconds`` is set: fresh (calibrates first) or holding a resumed plan."""
        budget = self.config.train.budget_seconds
        if not budget:
            return None
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        warmup = 3 + (5 if self.config.train.compile and self.device.type == "cuda" else 0)
        keeper = BudgetKeeper(budget, self.started_at, self.clock, sync, warmup_steps=warmup,
                              finish_seconds=3.0 + self.config.train.after_seconds)
        if self.budget_plan is not None:
            keeper.resume(self.budget_plan, self.start_step)  # started_at already counts the time spent before
        return keeper

    def run_shape(self) -> RunShape:
        train = self.config.train
        return RunShape(self.steps_per_epoch, train.epochs, train.eval_every,
                        self.data.labels is not None and train.eval_every > 0, train.checkpoint_every,
                        _checkpoint_seconds(self.method) if self.out_dir else 0.0)

    def _judge(self, keeper: BudgetKeeper | None, step: int, mean_loss: torch.Tensor) -> dict[str, Any]:
        """Rank 0's verdict at a log point, the same on every rank: has the loss diverged, is the speed
        known (plan now), or has the guard re-planned (the new total step count)."""
        verdict = None
        if self.dist.is_main:
            loss = float(mean_loss)
            planned = keeper is not None and not keeper.calibrating
            verdict = {"loss": loss, "diverged": not math.isfinite(loss),
                       "plan": keeper is not None and keeper.calibrating and keeper.speed_known,
                       "total": keeper.check(step, self.run_shape()) if planned else None}
        return broadcast_object(verdict)

    def _plan_budget(self, keeper: BudgetKeeper, step: int) -> None:
        """Measure one evaluation, plan the steps that fit (rank 0 decides), end the schedule there."""
        began = self.clock()
        eval_seconds = self._time_evaluation()
        keeper.exclude(self.clock() - began)
        plan = keeper.make_plan(step, eval_seconds, self.run_shape()) if self.dist.is_main else None
        self.budget_plan = broadcast_object(plan)
        keeper.plan = self.budget_plan
        self.schedule.refit(self.budget_plan.total_steps, step)
        say(self.budget_plan.describe()) if self.dist.is_main else None

    def _replan(self, total: int, step: int) -> None:
        """The guard's new length (rank 0's keeper has already taken it): end the schedule there."""
        before = self.schedule.total_steps
        self.budget_plan.total_steps = total
        self.schedule.refit(total, step)
        if self.dist.is_main:
            how = "slower" if total < before else "faster again"
            say(f"time budget: running {how} than planned; the run now ends at step {total} "
                f"({total / self.steps_per_epoch:.1f} epochs)")

    @torch.no_grad()
    def _time_evaluation(self) -> float:
        """Seconds one evaluation of the whole data set takes, from timing one evaluation batch (twice):
        gathering it, the forward pass and the method's read-out, scaled to the set (the read-out, e.g.
        CLC's Sinkhorn-Knopp over every sample, grows linearly with the rows too)."""
        n = len(self.data)
        rows = min(n, self.config.train.eval_batch_size)
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        was_training = self.method.training
        self.method.eval()
        best = float("inf")
        for _ in range(2):
            sync()
            began = self.clock()
            x = self.augment.eval_view(self.source.gather(torch.arange(rows)))
            if self.use_channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self.autocast():
                probabilities = self.method.cluster_probabilities(x).float()
            self.method.readout(probabilities).cpu()
            sync()
            best = min(best, self.clock() - began)
        self.method.train(was_training)
        return best * math.ceil(n / rows) / self.dist.world_size + 0.01 * n / 1000

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


def write_run_outputs(out_dir: Path, result: TrainResult, labels: np.ndarray | None,
                      device: torch.device = torch.device("cpu"), plan: BudgetPlan | None = None,
                      paths: list[str] | None = None, ids: list[str] | None = None,
                      uncertain_below: float = 0.5) -> None:
    """assignments.csv (index[, path], cluster, confidence, uncertain, the runner-up clusters[, label]) and
    metrics.json (which records the uncertainty threshold and how many samples fell below it)."""
    uncertain = write_assignments(out_dir / "assignments.csv", result.labels, result.probabilities, labels, paths,
                                  ids, uncertain_below)
    summary = {**result.metrics, "uncertain_below": uncertain_below, "n_uncertain": uncertain,
               "epochs": result.epochs, "wall_seconds": round(result.wall_seconds, 3),
               "n_samples": int(len(result.labels)), "n_clusters": int(result.probabilities.shape[1]),
               "cluster_sizes": np.bincount(result.labels, minlength=result.probabilities.shape[1]).tolist(),
               "peak_host_memory_mb": round(peak_host_memory_mb(), 1),
               "peak_device_memory_mb": peak_device_memory_mb(device), "device": str(device)}
    if plan is not None:
        summary["budget_plan"] = plan.to_dict()
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2))


# DDP's switch for not broadcasting buffers at every forward (torch 2.13 renamed it; older torch knows the old name)
_NO_FORWARD_BUFFER_SYNC = ({"forward_sync_buffers": False}
                           if "forward_sync_buffers" in inspect.signature(nn.parallel.DistributedDataParallel).parameters
                           else {"broadcast_buffers": False})


def _check_distributed(config: RunConfig, dist: DistContext, device: torch.device) -> None:
    """What a run over several processes needs: a global batch that splits evenly into equal batches on
    every rank (the gather of outputs takes the same rows from each), and SyncBatchNorm only on GPUs."""
    if not dist.enabled:
        return
    train = config.train
    if train.batch_size % dist.world_size:
        raise ConfigError(f"batch size {train.batch_size} must divide by the {dist.world_size} processes")
    if not train.drop_last:
        raise ConfigError(f"train.drop_last=false is not possible with {dist.world_size} processes: the last batch "
                          f"of an epoch would split unevenly over them; keep drop_last=true")
    if train.sync_batchnorm and device.type != "cuda":
        raise ConfigError("train.sync_batchnorm needs CUDA devices (PyTorch's SyncBatchNorm runs on GPUs only); "
                          "drop it on the CPU")


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


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _build_optimizer(config: RunConfig, params, device: torch.device) -> torch.optim.Optimizer:
    optim = config.optim
    fused = {"fused": True} if device.type == "cuda" else {}
    if optim.name == "adam":
        return torch.optim.Adam(params, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay, **fused)
    if optim.name == "adamw":
        return torch.optim.AdamW(params, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay, **fused)
    if optim.name == "sgd":
        return torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay,
                               nesterov=True, **fused)
    raise ConfigError(f"optim.name must be adam, adamw or sgd, got {optim.name!r}")


LOG_TAIL = ["lr", "nmi", "acc", "ari", "wall_seconds"]


def _log_fields(row: dict[str, Any]) -> list[str]:
    """epoch, loss, the method's loss parts in its order, then lr, metrics and time."""
    return ["epoch", "loss"] + [k for k in row if k not in LOG_TAIL + ["epoch", "loss"]] + LOG_TAIL


def _append_log(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists() or path.stat().st_size == 0
    fields = _log_fields(row) if new else next(csv.reader(open(path)))
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def _rewrite_log(path: Path, history: list[dict[str, Any]]) -> None:
    """Start log.csv afresh from the rows that the checkpoint knows (drops rows of a killed run's tail)."""
    path.unlink(missing_ok=True)
    for row in history:
        _append_log(path, row)


def _checkpoint_seconds(module: nn.Module) -> float:
    """A generous estimate of one checkpoint write: the weights and two optimiser moments at 100 MB/s."""
    weights = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    return 0.05 + 3 * weights / 100e6
