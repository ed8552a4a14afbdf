"""Named presets: typed RunConfigs per paper and data set. ``get_preset(name)`` returns a fresh copy.

When no preset is named, ``build_config`` uses the ``auto`` recipe (``recipes/auto.py``), chosen
from the data and the device and sized by a time budget; a named preset is used exactly as written.

``cc-paper-*`` follow CC's official settings (spec section 1.3-1.4: ResNet-34, ImageNet stem, 224 px,
batch 256, Adam 3e-4, 1000 epochs, jitter strength s and blur per data set); ``c3-paper-*`` C3's
official stage after them; ``drc-paper-*`` and ``clc-paper-*`` are reconstructions (their papers'
settings are unknown), each named so in its docstring. ``mnist5k-cpu`` is
the earlier default job (CC alone, 50 epochs on MNIST-5k), kept for comparisons; its network, views
and optimiser are what the ``auto`` recipe chooses for small grey images on a CPU.
"""
from __future__ import annotations

import copy
import numbers
from typing import TYPE_CHECKING, Callable

from contraclust.config import AugmentConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig, method_options_class
from contraclust.errors import ConfigError
from contraclust.recipes.auto import DataProfile, DeviceProfile, auto_recipe
from contraclust.training.budget import parse_duration

if TYPE_CHECKING:  # the presets' names and texts are read by the command line's parser, without torch
    import torch

# CC's per-data-set augmentation strength and blur (spec 1.3) and cluster counts (spec 1.5).
CC_PAPER_DATASETS = {
    "cifar10": (0.5, False, 10),
    "cifar100": (0.5, False, 20),
    "stl10": (1.0, False, 10),
    "imagenet10": (1.0, True, 10),
    "imagenet-dogs": (1.0, True, 15),
    "tiny-imagenet": (0.5, False, 200),
}


# The data sets of C3's results table (no STL-10).
C3_PAPER_DATASETS = ["cifar10", "cifar100", "imagenet10", "imagenet-dogs", "tiny-imagenet"]


# The papers trained in fp32: a ``*-paper-*`` preset, used as written, does too (TF32 matrix products on
# CUDA, as their GPUs' defaults did); ``--set train.precision=bf16`` asks for bf16 autocast instead.
PAPER_PRECISION = "fp32"


def cc_paper(dataset: str) -> RunConfig:
    strength, blur, k = CC_PAPER_DATASETS[dataset]
    return RunConfig(
        method="cc", n_clusters=k, preset=f"cc-paper-{dataset}",
        augment=AugmentConfig(size=224, jitter_strength=strength, blur_p=0.5 if blur else 0.0),
        model=ModelConfig(backbone="resnet34", stem="imagenet"),
        optim=OptimConfig(name="adam", lr=3e-4),
        train=TrainConfig(epochs=1000, batch_size=256, checkpoint_every=10, eval_every=10, precision=PAPER_PRECISION),
    )


def mnist5k_cpu() -> RunConfig:
    """CC on 28 px digits with a small CNN: crops and affine jitter suited to digits, no flip, no hue."""
    return RunConfig(
        method="cc", n_clusters=10, data="mnist5k", preset="mnist5k-cpu",
        augment=AugmentConfig(size=28, crop_scale=(0.4, 1.0), crop_ratio=(0.8, 1.25), flip_p=0.0,
                              jitter_strength=0.5, jitter_p=0.8, hue=False, grayscale_p=0.0, blur_p=0.0,
                              rotate_degrees=25.0, shear_degrees=15.0, translate=0.1),
        model=ModelConfig(backbone="small_cnn", width=32, feature_dim=128, head_hidden=256),
        optim=OptimConfig(name="adam", lr=1e-3, schedule="cosine"),
        train=TrainConfig(epochs=50, batch_size=64, checkpoint_every=5, eval_every=5, log_every=10),
    )


def features_cpu() -> RunConfig:
    """Feature vectors (embeddings, tables) with an MLP on standardised features: noise scaled to each
    feature's spread, feature dropout and nearest-neighbour positives, 100 epochs; for any method
    (``--preset features-cpu --method clc``). The ``auto`` recipe is the same, sized by time."""
    return RunConfig(
        method="cc", n_clusters=10, preset="features-cpu",
        augment=AugmentConfig(noise_std=0.1, feature_dropout=0.2, neighbours=10, neighbour_p=0.5),
        model=ModelConfig(backbone="mlp", mlp_hidden=(512, 512), feature_dim=128, input_norm="standardize"),
        optim=OptimConfig(name="adam", lr=1e-3, schedule="cosine"),
        train=TrainConfig(epochs=100, batch_size=256, checkpoint_every=10, eval_every=10),
    )


def cifar10_fast() -> RunConfig:
    """Our fast CIFAR-10 recipe (not a paper setting): CIFAR-stem ResNet-18 at 32 px instead of
    ResNet-34 at 224 px (about 1/15 of the FLOPs per image), batch 512 with AdamW lr 1e-3 (CC's 3e-4 at
    256, scaled up for the larger batch, with warm-up), TCL's weight decay 1e-4 and crop scale
    (0.2, 1), cosine decay, 200 epochs; bf16, channels_last and torch.compile on CUDA."""
    return RunConfig(
        method="cc", n_clusters=10, preset="cifar10-fast",
        augment=AugmentConfig(size=32, crop_scale=(0.2, 1.0), jitter_strength=0.5),
        model=ModelConfig(backbone="resnet18", stem="cifar"),
        optim=OptimConfig(name="adamw", lr=1e-3, weight_decay=1e-4, schedule="cosine", warmup_epochs=5),
        train=TrainConfig(epochs=200, batch_size=512, checkpoint_every=10, eval_every=10, eval_batch_size=2000,
                          compile=True),
    )


def c3_paper(dataset: str) -> RunConfig:
    """C3's official fine-tuning stage (spec 2.4): Adam 1e-5, batch 128, 20 epochs, zeta 0.6, CC's views,
    after the data set's ``cc-paper`` stage. The official code covers CIFAR-10 only; the other data sets
    use the same settings (their own are unknown)."""
    config = cc_paper(dataset)
    config.method, config.preset = "c3", f"c3-paper-{dataset}"
    config.method_options = method_options_class("c3")(cc_stage_preset=f"cc-paper-{dataset}")
    config.optim.lr = 1e-5
    config.train.batch_size, config.train.epochs = 128, 20
    config.train.checkpoint_every = config.train.eval_every = 1
    return config


def mnist5k_cpu_c3() -> RunConfig:
    """C3 stage on MNIST-5k after the mnist5k-cpu CC stage: Adam 1e-4 (C3's 1e-5 follows 1000 CC epochs;
    ours follow 50) for 10 epochs, one trial on MNIST-5k (docs/results.md), not tuned further."""
    config = mnist5k_cpu()
    config.method, config.preset = "c3", "mnist5k-cpu-c3"
    config.method_options = method_options_class("c3")(cc_stage_preset="mnist5k-cpu")
    config.optim.lr = 1e-4
    config.train.epochs, config.train.checkpoint_every, config.train.eval_every = 10, 2, 2
    return config


# GCC's crop size per data set (the DRC authors' next paper; spec drc_clc.md).
DRC_PAPER_SIZES = {"cifar10": 32, "cifar100": 32, "stl10": 96, "imagenet10": 96, "imagenet-dogs": 96,
                   "tiny-imagenet": 64}


def drc_paper(dataset: str) -> RunConfig:
    """A reconstruction of DRC's protocol on the GCC settings of the same authors (spec: UNVERIFIED):
    ResNet-18, SGD lr 0.4 cosine, wd 1e-4, batch 256, 1000 epochs, crops scale (0.2, 1) at GCC's size
    per data set (32/32/96/96/96/64), jitter (0.4, 0.4, 0.4, 0.1) p=0.8, grayscale 0.2. The stem is our
    choice: CIFAR's 3x3 stem up to 64 px, the ImageNet stem at 96 px."""
    size = DRC_PAPER_SIZES[dataset]
    return RunConfig(
        method="drc", n_clusters=CC_PAPER_DATASETS[dataset][2], preset=f"drc-paper-{dataset}",
        augment=AugmentConfig(size=size, crop_scale=(0.2, 1.0), jitter_strength=0.5),
        model=ModelConfig(backbone="resnet18", stem="cifar" if size <= 64 else "imagenet"),
        optim=OptimConfig(name="sgd", lr=0.4, weight_decay=1e-4, schedule="cosine"),
        train=TrainConfig(epochs=1000, batch_size=256, checkpoint_every=10, eval_every=10, precision=PAPER_PRECISION),
    )


def clc_paper(dataset: str) -> RunConfig:
    """CLC on a small benchmark: the paper's settings were not reachable (spec drc_clc.md, UNVERIFIED),
    so this is a reconstruction on CC's official settings for the data set (ResNet-34, 224 px, batch 256,
    Adam 3e-4, 1000 epochs, CC's views) with CLC's default options (Sinkhorn eps 0.05, 3 iterations)."""
    config = cc_paper(dataset)
    config.method, config.preset = "clc", f"clc-paper-{dataset}"
    config.method_options = method_options_class("clc")()
    return config


def clc_imagenet1k() -> RunConfig:
    """CLC at ImageNet-1k scale (K = 1000; settings UNVERIFIED, the paper's were not reachable):
    ResNet-50 at 224 px, batch 256 per step with a Sinkhorn queue of 4096 logits so that 1000 clusters
    can be balanced, start from a self-supervised backbone with ``--init``."""
    return RunConfig(
        method="clc", n_clusters=1000, preset="clc-imagenet1k",
        augment=AugmentConfig(size=224, jitter_strength=1.0, blur_p=0.5),
        model=ModelConfig(backbone="resnet50", stem="imagenet", head_hidden=2048),
        optim=OptimConfig(name="adamw", lr=1e-3, weight_decay=1e-4, schedule="cosine", warmup_epochs=5),
        train=TrainConfig(epochs=100, batch_size=256, checkpoint_every=1, eval_every=5),
        method_options={"sinkhorn_queue": 4096},
    )


def clc_imagenet1k_64() -> RunConfig:
    """CLC on ImageNet-1k at 64 px within one GPU day (our recipe; the paper's settings are UNVERIFIED):
    pack the train folder once (``contraclust pack --size 64``: 1.28M images, 14.6 GiB, resident on an
    80 GB GPU, streamed on a smaller one). ResNet-50 with the 3x3 stride-1 stem (64 px keeps a 64x64
    map into layer1, about 5.3 GFLOPs per view). Batch 256 per GPU, sized from a measured figure:
    autograd keeps 97 MB per image for its two views in bf16 (``benchmarks/activation_memory.py``), so
    256 images need about 37 GB with backward's margin, beside the resident data, on an 80 GB GPU, where
    at most 426 fit (1024 would need 146 GB). Under torchrun on N GPUs give ``--batch-size 256N``: the
    same per-GPU batch, the loss over the global one. A Sinkhorn queue of 8960 logits (35 batches), so
    that each of the 1000 clusters sees about 9 rows per balancing (SwAV balances 3000 prototypes over
    3840 + 256);
    AdamW 1e-3 (at 256; scale it by the square root of a larger global batch), 10 warm-up epochs,
    cosine; SimCLR's strong views at 64 px. The time budget of 24 h sizes the schedule (at most 400
    epochs); a checkpoint every epoch, an evaluation every 10."""
    return RunConfig(
        method="clc", n_clusters=1000, preset="clc-imagenet1k-64",
        augment=AugmentConfig(size=64, crop_scale=(0.2, 1.0), jitter_strength=1.0, blur_p=0.5),
        model=ModelConfig(backbone="resnet50", stem="cifar", head_hidden=2048),
        optim=OptimConfig(name="adamw", lr=1e-3, weight_decay=1e-4, schedule="cosine", warmup_epochs=10),
        train=TrainConfig(epochs=400, budget_seconds=24 * 3600, batch_size=256, checkpoint_every=1,
                          eval_every=10, eval_batch_size=4000, compile=True),
        method_options={"sinkhorn_queue": 8960},
    )


# The data sets of the self-labelling protocol (SCAN's and TCL's tables): CIFAR-10, CIFAR-100-20, STL-10.
SELF_LABEL_DATASETS = ["cifar10", "cifar100", "stl10"]


def cc_self_label_paper(dataset: str) -> RunConfig:
    """CC's official run on ``dataset`` (``cc-paper-*``), then self-labelling as TCL's boosting stage (spec
    section 3, item 5: 200 epochs, Adam 1e-4, weight decay 1e-4, alpha 0.99, gamma 0.5, class-balanced;
    strong views of 4 random operations and a hole up to 75 of 224 px). SCAN's self-labelling (ECCV 2020)
    is the same loss without the per-cluster cap (``--set self_label.per_cluster_share=0``)."""
    config = cc_paper(dataset)
    config.preset = f"cc-self-label-{dataset}"
    sl = config.self_label
    sl.enabled, sl.epochs, sl.lr, sl.weight_decay, sl.threshold, sl.per_cluster_share = True, 200, 1e-4, 1e-4, 0.99, 0.5
    sl.strong_ops, sl.cutout = 4, 75 / 224
    return config


PRESETS: dict[str, tuple[Callable[[], RunConfig], str]] = {
    **{f"cc-paper-{name}": (lambda name=name: cc_paper(name),
                            f"CC's official {name} settings: ResNet-34, 224 px, batch 256, Adam 3e-4, 1000 epochs")
       for name in CC_PAPER_DATASETS},
    **{f"c3-paper-{name}": (lambda name=name: c3_paper(name),
                            f"C3's official stage on {name}: Adam 1e-5, batch 128, 20 epochs after cc-paper-{name}")
       for name in C3_PAPER_DATASETS},
    **{f"drc-paper-{name}": (lambda name=name: drc_paper(name),
                             f"DRC on {name}, reconstructed on its authors' GCC settings (ResNet-18, SGD)")
       for name in DRC_PAPER_SIZES},
    **{f"clc-paper-{name}": (lambda name=name: clc_paper(name),
                             f"CLC on {name}: CC's official settings with CLC's loss (a reconstruction)")
       for name in CC_PAPER_DATASETS},
    **{f"cc-self-label-{name}": (lambda name=name: cc_self_label_paper(name),
                                 f"cc-paper-{name}, then 200 epochs of self-labelling as TCL's boosting stage")
       for name in SELF_LABEL_DATASETS},
    "mnist5k-cpu": (mnist5k_cpu, "CC on MNIST-5k with a small CNN for 50 epochs (the earlier default job)"),
    "features-cpu": (features_cpu, "feature vectors: MLP, noise, dropout and nearest-neighbour views, 100 epochs "
                                   "(any --method)"),
    "cifar10-fast": (cifar10_fast, "our fast CIFAR-10 recipe: CIFAR-stem ResNet-18, 32 px, batch 512, cosine"),
    "mnist5k-cpu-c3": (mnist5k_cpu_c3, "C3 fine-tuning stage on MNIST-5k after mnist5k-cpu"),
    "clc-imagenet1k": (clc_imagenet1k, "CLC with K=1000, ResNet-50, Sinkhorn queue (settings unverified)"),
    "clc-imagenet1k-64": (clc_imagenet1k_64, "CLC with K=1000 on ImageNet-1k packed at 64 px: ResNet-50, batch 256 "
                                             "per GPU, Sinkhorn queue 8960, one GPU day"),
}

# The preset a method uses on a data set's default, where that method has one of its own.
METHOD_VARIANTS = {("mnist5k-cpu", "c3"): "mnist5k-cpu-c3",
                   **{(f"cc-paper-{name}", "c3"): f"c3-paper-{name}" for name in C3_PAPER_DATASETS}}


def get_preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name][0]()


MNIST5K_PROFILE = DataProfile("mnist5k", 5000, True, channels=1, size=28, labelled=True)


def build_config(method: str | None = None, preset: str | None = None, *, data: str | None = None,
                 profile: DataProfile | None = None, device: str | torch.device | None = None,
                 n_clusters: int | None = None, epochs: int | None = None, budget: float | str | None = None,
                 batch_size: int | None = None, seed: int | None = None,
                 overrides: list[str] | None = None, init: bool = False) -> RunConfig:
    """The one place where a run's config is resolved, for the CLI and the Python API alike.

    Order: the named preset, or else the ``auto`` recipe for ``profile`` (the data; MNIST-5k's when
    not given) on ``device``; then a switch of method (keeping the preset's data, model and schedule,
    with the new method's default options); then the explicit arguments, then dotted ``overrides``.
    ``epochs`` wins over a budget: given alone it turns the budget off. ``init``: the run starts from
    given weights, so a C3 run has no CC stage and its ``epochs`` are the C3 stage's alone.
    """
    from contraclust.config import apply_overrides

    n_clusters, epochs, batch_size, seed = (_whole_number(name, value) for name, value in (
        ("n_clusters", n_clusters), ("epochs", epochs), ("batch_size", batch_size), ("seed", seed)))
    if overrides is not None and (isinstance(overrides, (str, bytes))
                                  or not all(isinstance(item, str) for item in overrides)):
        raise ConfigError(f"overrides must be a list of 'section.field=value' strings, got {overrides!r}")
    k = n_clusters if n_clusters is not None else 10
    if preset in (None, "auto"):
        from contraclust.training.device import resolve_device

        config = auto_recipe(profile or MNIST5K_PROFILE, DeviceProfile.of(resolve_device(device)), k, method)
    else:
        config = get_preset(METHOD_VARIANTS.get((preset, method), preset))
        if method and method != config.method:
            config.method = method
            config.method_options = method_options_class(method)()
        if isinstance(config.method_options, method_options_class("c3")) and not config.method_options.cc_stage_preset:
            config.method_options.cc_stage_preset = preset  # C3's CC stage uses the preset this run came from
    if data is not None:
        from contraclust.data.fingerprint import data_reference

        config.data, config.data_as_typed = data_reference(data), str(data)
    if n_clusters is not None:
        config.n_clusters = n_clusters
    if budget is not None:
        config.train.budget_seconds = parse_duration(budget)
        if config.recipe:
            config.recipe["reasons"]["train.budget_seconds"] = (
                f"{config.train.budget_seconds:.0f} s: as --budget asks; the epochs are planned from the measured "
                f"speed (at most {config.train.epochs})")
    if epochs is not None:
        if epochs < 1:
            raise ConfigError(f"train.epochs must be at least 1, got {epochs}")
        config.train.epochs = epochs
        config.train.budget_seconds = 0.0
        if not init:
            _split_auto_c3_epochs(config)
    if batch_size is not None:
        config.train.batch_size = batch_size
    if seed is not None:
        config.train.seed = seed
    apply_overrides(config, overrides or [])
    asked = any(item.replace(" ", "").startswith("self_label.enabled=") for item in overrides or [])
    if config.recipe and config.self_label.enabled and not config.train.budget_seconds and not asked:
        config.self_label.enabled = False  # auto's stage is a share of a budget, not epochs added to a fixed length
        config.recipe["reasons"]["self_label.enabled"] = (
            "false: the run has a fixed length, and the auto recipe's self-labelling is a share of a time budget "
            "(--then self-label adds it for self_label.epochs)")
    _note_what_was_asked(config, epochs, batch_size, overrides or [])
    config.validate()
    return config


def _note_what_was_asked(config: RunConfig, epochs: int | None, batch_size: int | None, overrides: list[str]) -> None:
    """The auto recipe's reasons, where the caller set a field itself, say so instead of the recipe's choice."""
    if not config.recipe:
        return
    reasons = config.recipe["reasons"]
    if epochs is not None:
        reasons.pop("train.budget_seconds", None)
        reasons["train.epochs"] = f"{config.train.epochs}: as asked (epochs instead of a time budget)"
    if batch_size is not None:
        reasons["train.batch_size"] = f"{batch_size}: as asked"
    for item in overrides:
        field, _, value = item.partition("=")
        reasons[field.strip()] = f"{value.strip()}: as asked"


def _whole_number(name: str, value) -> int | None:
    """An argument that must be a whole number (numpy integers accepted), or None for the default."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _split_auto_c3_epochs(config: RunConfig) -> None:
    """For ``auto`` C3 runs ``epochs`` is the length of both stages together, split as the budget is."""
    opts = config.method_options
    if config.preset == "auto" and isinstance(opts, method_options_class("c3")) and not opts.cc_stage_epochs:
        total = config.train.epochs
        opts.cc_stage_epochs = max(1, round(total * opts.cc_stage_budget_fraction))
        config.train.epochs = max(1, total - opts.cc_stage_epochs)


def cc_stage_config(config: RunConfig) -> RunConfig:
    """The CC run that precedes a C3 run, with the C3 run's data, K, seed, model and augmentation (C3
    fine-tunes that very network with the same views) and the schedule of ``cc_stage_preset``: the
    preset the C3 run came from (set by ``build_config``), ``auto`` (the same recipe with method cc,
    rebuilt from the profiles stored in ``config.recipe``), or for configs built by hand the C3 run's
    own settings."""
    opts = config.method_options
    if opts.cc_stage_preset == "auto" and config.recipe:
        stage = auto_recipe(DataProfile(**config.recipe["data"]), DeviceProfile(**config.recipe["device"]),
                            config.n_clusters, "cc")
        stage.train = copy.deepcopy(config.train)  # the recipe's loop, with what the caller set (batch, checkpoints)
        stage.train.after_seconds = 0.0  # what follows the CC stage is the C3 stage, inside the budget's rest
    elif opts.cc_stage_preset and opts.cc_stage_preset != "auto":
        stage = get_preset(opts.cc_stage_preset)
    else:
        stage = copy.deepcopy(config)
    stage.method = "cc"
    cc_options = method_options_class("cc")
    stage.method_options = cc_options(**{k: v for k, v in vars(opts).items() if k in cc_options.__dataclass_fields__})
    stage.n_clusters, stage.data = config.n_clusters, config.data
    stage.model, stage.augment = copy.deepcopy(config.model), copy.deepcopy(config.augment)
    stage.train.seed, stage.train.progress = config.train.seed, config.train.progress
    stage.train.precision, stage.train.channels_last = config.train.precision, config.train.channels_last
    if opts.cc_stage_epochs:
        stage.train.epochs = opts.cc_stage_epochs
    stage.train.budget_seconds = config.train.budget_seconds * opts.cc_stage_budget_fraction
    if opts.cc_stage_epochs:
        stage.train.budget_seconds = 0.0
    return stage
