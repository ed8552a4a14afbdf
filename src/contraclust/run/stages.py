"""The stages of a run, and how each stage's config derives from the run's.

A run trains its method; C3 without initial weights trains a CC stage first (``cc-stage/``, spec 2.1,
2.6); a run with ``self_label.enabled`` (``--then self-label``) ends with the self-labelling stage
(``methods/self_label.py``). That last stage writes into the run's own folder, so that the run is read
out, predicted and resumed from there as any run; the stages before it are preludes in sub-folders
(``before-self-label/``, and C3's ``cc-stage/`` beside it). Under a time budget the self-labelling stage
takes ``self_label.budget_share`` of it, the stages before it the rest; a share too short to train in is
skipped, and the run says so.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

from contraclust.config import OptimConfig, RunConfig
from contraclust.methods import ClusteringMethod
from contraclust.presets import cc_stage_config
from contraclust.run.folder import CC_STAGE_FOLDER, SELF_LABEL_FOLDER


@dataclass
class Stage:
    """One trainer's part of a run: its name (in messages), its config, its folder (relative to the run's;
    ``""`` the run's own; None: no folder) and, optionally, a factory of a model built by the caller
    (suggest-k's network). A ``prelude`` stage runs before the run's own (C3's CC stage): it says when it
    begins and ends, and once finished it is reused rather than trained again. ``self_labelling``: the
    stage trains the method's network by self-labelling (``methods.self_label.SelfLabel``)."""

    name: str
    config: RunConfig
    folder: str | None = ""
    build: Callable[[], ClusteringMethod] | None = None
    prelude: bool = False
    self_labelling: bool = False


def default_stages(config: RunConfig, with_init: bool) -> list[Stage]:
    """The run's stages (module docstring)."""
    if not config.self_label.enabled or self_labelling_skipped(config):
        return method_stages(config, with_init, "", prelude=False)
    before = before_self_labelling_config(config)
    return [*method_stages(before, with_init, SELF_LABEL_FOLDER, prelude=True),
            Stage("self-labelling", self_labelling_config(config), "", self_labelling=True)]


def method_stages(config: RunConfig, with_init: bool, folder: str, prelude: bool) -> list[Stage]:
    """The method's own training into ``folder``: C3 without initial weights after its CC stage."""
    name = config.method.upper() + (" stage" if prelude else "")
    own = Stage(name, config, folder, prelude=prelude)
    if config.method == "c3" and not with_init:
        return [Stage("CC stage", cc_stage_config(config), CC_STAGE_FOLDER, prelude=True), own]
    return [own]


def self_labelling_skipped(config: RunConfig) -> str | None:
    """Why a budgeted run skips its self-labelling stage (its share is under ``min_seconds``), or None."""
    sl, budget = config.self_label, config.train.budget_seconds
    if sl.enabled and budget and budget * sl.budget_share < sl.min_seconds:
        return (f"self-labelling skipped: its {sl.budget_share:.0%} of the {budget:.0f} s budget is "
                f"{budget * sl.budget_share:.1f} s, under the {sl.min_seconds:.0f} s it needs "
                f"(self_label.min_seconds); give a longer --budget")
    return None


def before_self_labelling_config(config: RunConfig) -> RunConfig:
    """The method's training before self-labelling: the run's, within the budget's first part."""
    stage = copy.deepcopy(config)
    if stage.train.budget_seconds:
        stage.train.budget_seconds = config.train.budget_seconds * (1 - config.self_label.budget_share)
        stage.train.after_seconds = 0.0  # what follows is the self-labelling stage, inside the rest
    return stage


def self_labelling_config(config: RunConfig) -> RunConfig:
    """The self-labelling stage: the run's network and data, Adam at ``self_label.lr`` and weight decay,
    strong views (images: ``strong_ops`` and ``cutout``; vectors: ``noise_scale`` times the noise and
    ``feature_dropout``; no neighbour positives: both views are of the sample itself), ``self_label.epochs``
    without a budget, the run's end with one."""
    sl, stage = config.self_label, copy.deepcopy(config)
    stage.optim = OptimConfig(name="adam", lr=sl.lr, weight_decay=sl.weight_decay)
    augment = stage.augment
    augment.neighbours = 0
    augment.strong_ops, augment.cutout = sl.strong_ops, sl.cutout
    augment.noise_std = max(augment.noise_std, 0.05) * sl.noise_scale
    augment.feature_dropout = max(augment.feature_dropout, sl.feature_dropout)
    if not stage.train.budget_seconds:
        stage.train.epochs = sl.epochs
    return stage
