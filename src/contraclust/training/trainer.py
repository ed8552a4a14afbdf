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
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

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
    autocast_context, autocast_dtype, peak_device_memory_mb, peak_host_memory_mb, resolve_device,
)
from contraclust.training.inference import predict_probabilities
from contraclust.training.distributed import (
    DistContext, barrier, broadcast_flag, broadcast_object, gather, init_distributed,
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
        """``started_at``: the ``clock()`` reading from which a time budget counts (default: now).
        ``instance_data``: extra images of the same shape that train the instance loss only.
        ``method``: a model built by the caller (e.g. suggest-k's heads of many K) instead of
        ``config.method``'s."""
        self.clock = clock
        self.started_at = clock() if started_at is None else started_at
        check_data(config, data)
        self.config = config
        self.device = resolve_device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.dist: DistContext = init_distributed(self.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        self.out_dir = Path(out_dir) if out_dir else None
        self.data = data
        train = config.train
        if train.batch_size % self.dist.world_size:
            raise ConfigError(f"batch size {train.batch_size} must divide by the {self.dist.world_size} processes")
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
        if self.dist.enabled and train.sync_batchnorm:
            self.method = nn.SyncBatchNorm.convert_sync_batchnorm(self.method)
        self.model: nn.Module = self.method
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.method, device_ids=ids)
        on_cuda = self.device.type == "cuda"
        self.forward = torch.compile(self.model) if train.compile and on_cuda else self.model
        self.optimizer = _build_optimizer(config, self.method.parameters(), self.device)
        self.autocast_dtype = autocast_dtype(train.precision, self.device)
        self.source, self.instance_source = self._place_data(data, instance_data if self.instance_steps else None)
        self.samples = self.source.samples  # on the device when resident, in host memory when streamed
        self.augment = build_augmenter(config.augment, data.is_image, self.samples)
        self.augment_views = (torch.compile(self.augment.__call__) if train.compile_augment and on_cuda
                              else self.augment)
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
            "rng": ckpt.global_rng_state(),
            "world_size": self.dist.world_size,
            "config": self.config.to_dict(),
            "history": self.history,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.order_generator.set_state(state["order_generator"])
        if state.get("world_size", 1) == self.dist.world_size:
            self.augment_generator.set_state(state["augment_generator"])
            if self.dist.world_size == 1:
                ckpt.restore_global_rng_state(state["rng"])
        else:
            # A different number of processes: the data order continues exactly; augmentation
            # streams are re-seeded from (seed, epoch, rank), so the run stays reproducible.
            seed = self.config.train.seed * 1_000_003 + state["epoch"] * 7919 + self.dist.rank
            self.augment_generator.manual_seed(seed)
        self.start_epoch = int(state["epoch"])
        self.start_step = int(state.get("step", self.start_epoch * self.steps_per_epoch))
        self.history = list(state.get("history", []))
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
        """Two augmented views: of ``batch``, and of ``partner`` (each row's neighbour) when given."""
        view_a = self.augment_views(batch, self.augment_generator)
        view_b = self.augment_views(batch if partner is None else partner, self.augment_generator)
        if self.use_channels_last:
            view_a = view_a.contiguous(memory_format=torch.channels_last)
            view_b = view_b.contiguous(memory_format=torch.channels_last)
        return view_a, view_b

    def train_step(self, batch: torch.Tensor, step: int, partner: torch.Tensor | None = None,
                   instance_only: bool = False) -> dict[str, torch.Tensor]:
        """One optimiser step on a batch of the resident data: views, forward, gathered loss, update."""
        return self.step_on_views(*self.make_views(batch, partner), step, instance_only)

    def step_on_views(self, view_a: torch.Tensor, view_b: torch.Tensor, step: int,
                      instance_only: bool = False) -> dict[str, torch.Tensor]:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step)
        with self.autocast():
            outputs = self.forward(view_a, view_b)
        outputs = {k: gather(v.float()) for k, v in outputs.items()}
        if instance_only:
            loss, parts = self.method.instance_loss(outputs)
            parts = {"unlabelled_instance": parts["instance"]}
        else:
            loss, parts = self.method.loss(outputs)
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
        """(this process's batch on the device, its rows, instance_only) for each step of one epoch: the
        instance-only pass over ``instance_data`` first (when given), then the data to cluster. Every
        process draws the same global order and takes its own slice of each batch."""
        if self.instance_source is not None:
            order = torch.randperm(len(self.instance_source.samples), generator=self.order_generator,
                                   device=self.device)
            rows = self._local_rows(order, self.instance_steps)
            for samples, local in zip(self.instance_source.batches(rows), rows):
                yield samples, local, True
        rows = self._local_rows(self.epoch_indices(), self.cluster_steps)
        for samples, local in zip(self.source.batches(rows), rows):
            yield samples, local, False

    def _local_rows(self, order: torch.Tensor, steps: int) -> list[torch.Tensor]:
        batch, dist = self.config.train.batch_size, self.dist
        if self.source.placement == "streaming":
            order = order.cpu()  # one copy per epoch; the background thread gathers from host memory
        return [order[i * batch: (i + 1) * batch].tensor_split(dist.world_size)[dist.rank] for i in range(steps)]

    def _place_data(self, data: Samples, instance_data: Samples | None):
        """The sources of the data (and the extra instance data): resident or streamed (``streaming``)."""
        train = self.config.train
        nbytes = data.tensor.nbytes + (instance_data.tensor.nbytes if instance_data is not None else 0)
        placement, reason = choose_placement(nbytes, self.device, train.data_placement, train.data_memory_limit_mb)
        if self.dist.is_main:
            how = ("one index per batch" if placement == "resident" else
                   "batches gathered by a background thread" + (", pinned and copied asynchronously"
                                                                 if self.device.type == "cuda" else ""))
            say(f"data: {placement} ({how}): {reason}")
        return (make_source(data.tensor, self.device, placement),
                make_source(instance_data.tensor, self.device, placement) if instance_data is not None else None)

    def fit(self, on_epoch_end: Callable[[dict[str, Any]], bool] | None = None) -> TrainResult:
        """Train to the planned step (``config.train.epochs``, or what fits ``train.budget_seconds``).
        ``on_epoch_end(row)`` sees each log row and may return True to stop early (after the epoch's
        checkpoint)."""
        train = self.config.train
        if self.out_dir and self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.json").write_text(self.config.to_json())
            _rewrite_log(self.out_dir / "log.csv", self.history)
        start = time.perf_counter()
        elapsed_before = self.history[-1]["wall_seconds"] if self.history else 0.0
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
            for i, (samples, local_rows, instance_only) in enumerate(self.epoch_batches()):
                if step >= self.schedule.total_steps:
                    break
                partner = (self.source.gather(self.partner.pick(local_rows.to(self.device), self.augment_generator))
                           if self.partner is not None else None)
                parts = self.train_step(samples, step, partner, instance_only)
                for k, v in parts.items():
                    totals[k] = totals.get(k, 0) + v
                    counts[k] = counts.get(k, 0) + 1
                step, done = step + 1, i + 1
                if keeper and keeper.calibrating and keeper.step_done():
                    self._plan_budget(keeper, step)
                    bar.set_total(self.schedule.total_steps - self.start_step)
                if done % train.log_every == 0 or done == self.steps_per_epoch or step >= self.schedule.total_steps:
                    loss_so_far = float(totals["loss"]) / counts["loss"]
                    if broadcast_flag(not math.isfinite(loss_so_far)):
                        bar.close()
                        raise TrainingDiverged(
                            f"the loss became {loss_so_far} at epoch {epoch}, step {done}; lower the learning "
                            f"rate or check the data; the last good checkpoint is kept in the run folder")
                    if keeper and not keeper.calibrating and self._guard_budget(keeper, step):
                        bar.set_total(self.schedule.total_steps - self.start_step)
                    bar.set_postfix(epoch=epoch, loss=f"{loss_so_far:.4f}", refresh=False)
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
            row["wall_seconds"] = round(elapsed_before + time.perf_counter() - start, 3)
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
        wall = elapsed_before + time.perf_counter() - start
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
            keeper.resume(self.budget_plan, self.start_step, self.history[-1]["wall_seconds"] if self.history else 0.0)
        return keeper

    def run_shape(self) -> RunShape:
        train = self.config.train
        return RunShape(self.steps_per_epoch, train.epochs, train.eval_every,
                        self.data.labels is not None and train.eval_every > 0, train.checkpoint_every,
                        _checkpoint_seconds(self.method) if self.out_dir else 0.0)

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

    def _guard_budget(self, keeper: BudgetKeeper, step: int) -> bool:
        """Re-plan when the projected end has passed the deadline (or is well ahead of a shortened plan)."""
        before = self.budget_plan.total_steps
        total = broadcast_object(keeper.check(step, self.run_shape()) if self.dist.is_main else None)
        if total is None:
            return False
        self.budget_plan.total_steps = total
        self.schedule.refit(total, step)
        if self.dist.is_main:
            how = "slower" if total < before else "faster again"
            say(f"time budget: running {how} than planned; the run now ends at step {total} "
                f"({total / self.steps_per_epoch:.1f} epochs)")
        return True

    @torch.no_grad()
    def _time_evaluation(self) -> float:
        """Seconds one evaluation of the whole data set takes, from timing one evaluation batch (twice)."""
        n = len(self.data)
        rows = min(n, self.config.train.eval_batch_size)
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        was_training = self.method.training
        self.method.eval()
        best = float("inf")
        for _ in range(2):
            sync()
            began = self.clock()
            x = self.augment.eval_view(self.samples[:rows].to(self.device))
            if self.use_channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self.autocast():
                self.method.cluster_probabilities(x).float().cpu()
            sync()
            best = min(best, self.clock() - began)
        self.method.train(was_training)
        return best * math.ceil(n / rows) / self.dist.world_size + 0.01 * n / 1000

    @torch.no_grad()
    def predict(self, samples: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cluster labels and (N, K) probabilities; the work is split over processes."""
        return predict_probabilities(self.method, self.augment, self.samples if samples is None else samples,
                                     self.config.train.eval_batch_size, self.autocast, self.use_channels_last,
                                     self.dist)


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
