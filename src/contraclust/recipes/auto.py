"""The ``auto`` recipe: a run chosen from the data and the device, sized by a time budget.

Used whenever no preset is named. Every choice is a rule on a :class:`DataProfile` and a
:class:`DeviceProfile`, and comes with its reason; both are stored in the config (``recipe``), printed
at the start of ``fit`` and shown by ``contraclust presets --data ...``. The named paper presets are
never touched by this module.

Why the rules are what they are (measurements in docs/results.md and docs/budgets-and-auto.md):
- On a CPU the convolutions are the whole cost of a step, so the network and the input size set how
  many epochs fit in the 10-minute default: a small CNN at no more than 32 px gives tens of epochs,
  where a ResNet-18 would give a handful. Images are never upscaled on a CPU.
- On a GPU the budget (30 minutes) buys the backbones of the papers: a CIFAR-stem ResNet-18 for
  32 to 96 px, an ImageNet-stem ResNet above (ResNet-34 at 224 px from 160 px up, as CC).
- Grey images stay grey. Small grey images (digits, characters, icons) get affine views (rotation,
  shear, shift; no flip, which turns a 2 into a mirror image); grey photos get crops and flips;
  colour images get CC's colour views, with crops of 20-100% of the area (TCL's).
- Images on a CPU train in batches of 64. On photos a batch of 256 with CC's crops of 8-100% was
  chosen from a screen on 5 CIFAR-10 classes (airplane to deer: NMI 0.248 against 0.230 in 10
  minutes, 3 seeds, within the spread) and then lost on the other five (dog to truck: 0.473 against
  0.525), so photos keep 64 and 20-100% (benchmarks/photo_recipe.py; the tables are in docs/results.md).
  Neighbour positives mined from the embedding, a wider network, stronger colour jitter, smaller views
  and a lower instance temperature did not pay either; a longer budget does (NMI 0.25 after the
  default 10 minutes on the first five classes, 0.33 after 30), and the reason line says so.
- Where the CC stage gets strong features (small grey images on a CPU; any images on a GPU) the method is
  a CC stage followed by a C3 stage within the same budget: C3's cross-instance positives raised NMI on
  MNIST-5k from 0.80 / 0.71 after 50 CC epochs to 0.92 / 0.82 within two C3 epochs, and then stay
  level, so C3 gets 15% of the budget. Where the features stay weak (colour photos on a CPU) C3's
  similarity threshold pulls unlike images together (5 CIFAR-10 classes: NMI 0.205 after the CC stage,
  0.145 after C3), so the method is CC alone. CC gets 5 cluster heads read out by the lowest loss, as
  a poor early partition caps what C3 can reach. ``--method`` overrides the choice.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from contraclust.config import AugmentConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig, method_options_class

if TYPE_CHECKING:
    import torch

VECTOR_BUDGET_SECONDS = 120.0
VECTOR_NEIGHBOURS = 10
CPU_BUDGET_SECONDS = 600.0
GPU_BUDGET_SECONDS = 1800.0
CPU_MAX_IMAGE_SIZE = 32
GPU_MAX_IMAGE_SIZE = 224
SMALL_IMAGE = 48          # at most this many pixels a side: digits, characters, icons
SELF_LABEL_MEASURED = "ACC 0.893 ± 0.015 -> 0.947 ± 0.007, NMI 0.862 -> 0.884, ARI 0.813 -> 0.887, 583 s"
SELF_LABEL_FROZEN_MEASURED = ("NMI +0.001 and +0.023 on two sets at the vectors' 2 minutes; +0.014, +0.008 and -0.004 "
                              "(within its spread) on three at 40 s")
CLUSTER_HEADS = 5         # CC and C3: cluster heads on the one backbone (CCOptions.cluster_heads)
C3_LR_RATIO = 0.1         # the C3 stage's learning rate, as a fraction of the CC stage's


@dataclass
class DataProfile:
    """What the recipe needs to know of the data: how many samples, and of what kind."""

    name: str
    n_samples: int
    is_image: bool
    channels: int = 0     # images: 1 (grey) or 3
    size: int = 0         # images: the larger side of the files, in pixels
    dim: int = 0          # feature vectors: their length
    labelled: bool = False
    loaded_size: int = 0  # images: their side as loaded (below ``size`` when shrunk on loading); 0 unknown
    frozen_features: bool = False  # vectors: images embedded by a frozen pretrained backbone in this run

    @classmethod
    def of(cls, data, frozen_features: bool = False) -> "DataProfile":
        shape = data.sample_shape
        if data.is_image:
            return cls(data.name, len(data), True, channels=shape[0], size=data.native_size or max(shape[1:]),
                       labelled=data.labels is not None, loaded_size=max(shape[1:]))
        return cls(data.name, len(data), False, dim=shape[0], labelled=data.labels is not None,
                   frozen_features=frozen_features)


@dataclass
class DeviceProfile:
    kind: str              # cpu or cuda
    description: str
    threads: int = 1
    fast_bf16: bool = False
    memory_gb: float = 0.0

    @classmethod
    def of(cls, device: torch.device | str) -> "DeviceProfile":
        import torch

        from contraclust.threads import available_cores, torch_threads_line
        from contraclust.training.device import cpu_has_fast_bf16

        device = torch.device(device)
        if device.type == "cuda":
            props = torch.cuda.get_device_properties(device)
            return cls("cuda", f"{props.name}, {props.total_memory / 2**30:.0f} GiB", fast_bf16=True,
                       memory_gb=props.total_memory / 2**30)
        threads = torch.get_num_threads()
        bf16 = cpu_has_fast_bf16()
        capability = torch.backends.cpu.get_cpu_capability()
        return cls("cpu", f"CPU, {available_cores()} cores, {capability}" + (", native bf16" if bf16 else "")
                   + f"; {torch_threads_line()}", threads=threads, fast_bf16=bf16)


def max_image_size(device: DeviceProfile) -> int:
    """The largest side images are loaded at when no preset is named."""
    return CPU_MAX_IMAGE_SIZE if device.kind == "cpu" else GPU_MAX_IMAGE_SIZE


def auto_recipe(data: DataProfile, device: DeviceProfile, n_clusters: int = 10, method: str | None = None) -> RunConfig:
    """The run the ``auto`` preset chooses for ``data`` on ``device``, with a reason for each choice."""
    reasons: dict[str, str] = {}
    config = RunConfig(method="cc", n_clusters=n_clusters, preset="auto")
    if data.is_image:
        _image_choices(config, data, device, reasons)
        if data.size > data.loaded_size > 0 and config.augment.size > data.loaded_size:
            config.augment.size = data.loaded_size  # shrunk on loading (--image-size): views never upscale them
            reasons["augment.size"] = f"{data.loaded_size} px: the side the images were loaded at"
    else:
        _vector_choices(config, data, device, reasons)
    _loop_choices(config, data, device, reasons)
    chosen = method or _default_method(data, device, reasons)
    if chosen != "cc":
        config.method = chosen
        config.method_options = method_options_class(chosen)()
    if hasattr(config.method_options, "cluster_heads"):
        config.method_options.cluster_heads = CLUSTER_HEADS
        reasons["method.cluster_heads"] = (
            f"{CLUSTER_HEADS}: CC's cluster head sometimes settles early on a poor partition; {CLUSTER_HEADS} heads "
            "on one backbone, read out by the lowest cluster loss (SCAN's device), raised mean ACC after 20 CC "
            "epochs on MNIST-5k from 0.69 to 0.72 (4 seeds, NMI unchanged) in the same time "
            "(benchmarks/stage_curves.py)")
    if chosen == "c3":
        config.method_options.cc_stage_preset = "auto"
        c3_stage(config, reasons)
    _self_labelling_choice(config, data, device, reasons)
    config.recipe = {"data": asdict(data), "device": asdict(device), "reasons": reasons}
    return config


def _self_labelling_choice(config: RunConfig, data: DataProfile, device: DeviceProfile,
                           reasons: dict[str, str]) -> None:
    """The self-labelling stage where it was measured to raise the 3-seed mean by more than it ever cost
    (docs/self-labelling.md): small grey images on a CPU, and a frozen backbone's features; not pixel
    vectors (digits and MNIST-5k lost NMI 0.03) nor colour photos from scratch."""
    if data.is_image and data.channels == 1 and data.size <= SMALL_IMAGE and device.kind == "cpu":
        measured = (f"MNIST-5k, 3 seeds, 10 minutes, AVX2 kernels: {SELF_LABEL_MEASURED} "
                    f"(benchmarks/default_job.py --then self-label)")
    elif data.frozen_features:
        measured = (f"MobileNetV2 features of CIFAR-10 photos, 3 seeds: {SELF_LABEL_FROZEN_MEASURED} "
                    f"(benchmarks/frozen_features.py --then self-label)")
    else:
        return
    config.self_label.enabled = True
    reasons["self_label.enabled"] = (
        f"true: the last {config.self_label.budget_share:.0%} of the training time trains the network on its own "
        f"most confident predictions (self-labelling, as SCAN and TCL end theirs); {measured}; "
        f"--set self_label.enabled=false turns it off")


def _default_method(data: DataProfile, device: DeviceProfile, reasons: dict[str, str]) -> str:
    """C3 after CC where the CC stage gets strong features (small grey images, vectors; any images on a GPU),
    else CC."""
    if not data.is_image:
        reasons["method"] = ("c3: a CC stage, then C3; the best of the four on vectors here (benchmarks/vectors.py, "
                             "3 seeds: digits NMI 0.832 against CC's 0.829, MNIST-5k pixels 0.625 against 0.589); "
                             "--method cc for plain CC")
        return "c3"
    if (data.channels == 1 and data.size <= SMALL_IMAGE) or device.kind == "cuda":
        why = ("on MNIST-5k it raised NMI from 0.80 / 0.71 after 50 CC epochs to 0.92 / 0.82 within two epochs, benchmarks/stage_curves.py"
               if device.kind == "cpu" else "the C3 paper's CIFAR-10 gain from a CC start, +0.07 ACC; not measured here")
        reasons["method"] = (f"c3: a CC stage (85% of its budget), then C3's cross-instance fine-tuning ({why}); "
                             "--method cc for plain CC")
        return "c3"
    reasons["method"] = ("cc: on a CPU budget colour photos get weak features, and C3's similarity threshold then "
                         "pulls unlike images together (5 CIFAR-10 classes: NMI 0.205 after the CC stage, 0.145 after "
                         "C3)")
    return "cc"


def c3_stage(config: RunConfig, reasons: dict[str, str] | None = None) -> None:
    """Turn the CC recipe in ``config`` into its C3 stage: the same network, views and batch, a tenth of
    the learning rate (C3 fine-tunes a trained network: its paper uses 1e-5 after CC's 3e-4)."""
    config.optim.lr *= C3_LR_RATIO
    if reasons is not None:
        reasons["optim.lr"] = (f"{config.optim.lr:g} in the C3 stage: a tenth of the CC stage's "
                               f"{config.optim.lr / C3_LR_RATIO:g}, as C3 fine-tunes a trained network")


def _image_choices(config: RunConfig, data: DataProfile, device: DeviceProfile, reasons: dict[str, str]) -> None:
    grey, size = data.channels == 1, data.size
    kind = "grey" if grey else "colour"
    if device.kind == "cpu":
        config.augment.size = min(size, CPU_MAX_IMAGE_SIZE)
        reasons["augment.size"] = (
            f"{config.augment.size} px: the images' own {size} px" if size <= CPU_MAX_IMAGE_SIZE else
            f"{config.augment.size} px: {size} px images shrunk; on a CPU inputs are capped at {CPU_MAX_IMAGE_SIZE} px "
            f"so that the budget holds tens of epochs") + (", never upscaled on a CPU" if size < CPU_MAX_IMAGE_SIZE else "")
        config.model = ModelConfig(backbone="small_cnn", width=32, feature_dim=128, head_hidden=256)
        reasons["model.backbone"] = ("small_cnn (width 32): on a CPU the convolutions are the whole step, and a "
                                     "ResNet-18 would fit only a few epochs in the budget")
    else:
        _gpu_backbone(config, data, reasons)
    reasons["channels"] = f"{data.channels} ({kind} images keep their channels)"
    if grey and size <= SMALL_IMAGE:
        config.augment = AugmentConfig(size=config.augment.size, crop_scale=(0.4, 1.0), crop_ratio=(0.8, 1.25),
                                       flip_p=0.0, jitter_strength=0.5, jitter_p=0.8, hue=False, grayscale_p=0.0,
                                       rotate_degrees=25.0, shear_degrees=15.0, translate=0.1)
        reasons["augment"] = ("small grey images (digits, characters): crops of 40-100% area, rotation ±25°, "
                              "shear ±15°, shift ±10%, brightness/contrast; no flip (it mirrors glyphs), no hue")
    elif grey:
        config.augment = AugmentConfig(size=config.augment.size, crop_scale=(0.2, 1.0), flip_p=0.5,
                                       jitter_strength=0.5, hue=False, grayscale_p=0.0,
                                       blur_p=0.5 if config.augment.size >= 96 else 0.0)
        reasons["augment"] = "grey photos: crops of 20-100% area, flips, brightness/contrast; no hue"
    else:
        config.augment = AugmentConfig(size=config.augment.size, crop_scale=(0.2, 1.0), flip_p=0.5,
                                       jitter_strength=0.5, blur_p=0.5 if config.augment.size >= 96 else 0.0)
        reasons["augment"] = ("colour photos: CC's views (crops, flips, colour jitter s=0.5 with p 0.8, grey 20%"
                              + (", blur 50%" if config.augment.blur_p else "; no blur below 96 px, as CC")
                              + "), crops of 20-100% area as TCL")


def _gpu_backbone(config: RunConfig, data: DataProfile, reasons: dict[str, str]) -> None:
    size = data.size
    if data.channels == 1 and size <= SMALL_IMAGE:
        config.augment.size = size
        config.model = ModelConfig(backbone="small_cnn", width=64, feature_dim=128, head_hidden=512)
        reasons["augment.size"] = f"{size} px: the images' own"
        reasons["model.backbone"] = "small_cnn (width 64): small grey images need no ResNet"
    elif size <= 96:
        config.augment.size = max(32, size)
        config.model = ModelConfig(backbone="resnet18", stem="cifar")
        reasons["augment.size"] = f"{config.augment.size} px: the images' own" + (
            " raised to 32" if size < 32 else "")
        reasons["model.backbone"] = "resnet18 with the CIFAR stem (3x3 conv, no pooling) for 32-96 px"
    else:
        config.augment.size = min(size, GPU_MAX_IMAGE_SIZE if size >= 160 else 128)
        depth = "resnet34" if config.augment.size >= 160 else "resnet18"
        config.model = ModelConfig(backbone=depth, stem="imagenet")
        reasons["augment.size"] = f"{config.augment.size} px (the images are {size} px)"
        reasons["model.backbone"] = f"{depth} with the ImageNet stem for large images" + (
            " (CC's network)" if depth == "resnet34" else "")


def _vector_choices(config: RunConfig, data: DataProfile, device: DeviceProfile, reasons: dict[str, str]) -> None:
    k = min(VECTOR_NEIGHBOURS, max(1, data.n_samples // max(2, 2 * config.n_clusters)))
    config.augment = AugmentConfig(noise_std=0.1, feature_dropout=0.2, neighbours=k, neighbour_p=0.5)
    config.model = ModelConfig(backbone="mlp", mlp_hidden=(512, 512), feature_dim=128, input_norm="standardize")
    reasons["model.backbone"] = f"mlp (512, 512) on standardised features: {data.dim}-d feature vectors"
    reasons["augment"] = (f"feature vectors: Gaussian noise (0.1 of each feature's spread), 20% feature dropout, "
                          f"and half of the second views are one of the sample's {k} nearest neighbours (SCAN, TEMI)")


def _loop_choices(config: RunConfig, data: DataProfile, device: DeviceProfile, reasons: dict[str, str]) -> None:
    on_cpu = device.kind == "cpu"
    resnet = config.model.backbone.startswith("resnet")
    photos = data.is_image and not (data.channels == 1 and data.size <= SMALL_IMAGE)
    base = 64 if on_cpu else (512 if data.n_samples >= 50_000 else 256)
    if not data.is_image:
        base = 256
    wanted = max(base, _power_of_two_at_least(4 * config.n_clusters))
    batch = max(2, min(wanted, _power_of_two_at_most(max(2, data.n_samples // 2))))
    config.train.batch_size = batch
    reasons["train.batch_size"] = (
        f"{batch}: " + (_cpu_batch_reason(photos) if on_cpu and data.is_image else "")
        + f"at least 4 per cluster ({config.n_clusters} clusters)" + (f", at most half of the {data.n_samples} samples"
                                                                        if batch < wanted else ""))
    if resnet:
        config.optim = OptimConfig(name="adamw", lr=1e-3 * batch / 512, weight_decay=1e-4, schedule="cosine",
                                   warmup_epochs=2)
        reasons["optim"] = f"AdamW {config.optim.lr:g} (1e-3 per 512), weight decay 1e-4, 2 warm-up epochs, cosine"
    else:
        config.optim = OptimConfig(name="adam", lr=1e-3, schedule="cosine")
        reasons["optim"] = "Adam 1e-3 with cosine decay to the end of the budget"
    budget = CPU_BUDGET_SECONDS if on_cpu else GPU_BUDGET_SECONDS
    if not data.is_image:
        budget = VECTOR_BUDGET_SECONDS
    config.train = TrainConfig(epochs=1000, budget_seconds=budget, batch_size=batch, checkpoint_every=5,
                               eval_every=5, eval_batch_size=500 if on_cpu else 2000, log_every=10,
                               compile=resnet and not on_cpu)
    reasons["train.budget_seconds"] = (
        (f"{budget:.0f} s: the default budget on {'a CPU' if on_cpu else 'a GPU'}; " if data.is_image else
         f"{budget:.0f} s: an MLP on vectors needs minutes, not the images' {CPU_BUDGET_SECONDS / 60:.0f}; ")
        + "the epochs are planned from the measured speed (at most 1000)"
        + ("; photos from scratch keep improving past it (airplane to deer of CIFAR-10, benchmarks/photo_recipe.py: NMI 0.25 "
           "after 10 min, 0.33 after 30): --budget 30m" if on_cpu and data.is_image and data.channels == 3 else ""))


def budget_after_embedding(config: RunConfig, spent_seconds: float, device: DeviceProfile) -> None:
    """A run on images embedded through a frozen backbone, with no budget asked for: the budget counts from
    the process's start, so reading and embedding (``spent_seconds``) come first and the vectors' recipe
    gets its own default after them, within the images' default for the whole job (10 minutes on a CPU):
    5,000 photos through MobileNetV2 took 290 s to read and embed on 2 cores, and the vectors' 120 s from the
    start had left the clustering its shortest run and no time for the report."""
    whole = CPU_BUDGET_SECONDS if device.kind == "cpu" else GPU_BUDGET_SECONDS
    vectors = config.train.budget_seconds
    config.train.budget_seconds = min(whole, spent_seconds + vectors)
    trained = config.train.budget_seconds - spent_seconds
    method_seconds = config.train.budget_seconds
    if config.self_label.enabled:  # the stage's share of the training time, not of the embedding's
        stage_seconds = config.self_label.budget_share * trained
        config.self_label.budget_share = stage_seconds / config.train.budget_seconds
        method_seconds -= stage_seconds
    options = config.method_options
    if hasattr(options, "cc_stage_budget_fraction"):  # C3's CC stage: its share of the training time, not of the embedding's
        trained_by_method = method_seconds - spent_seconds
        options.cc_stage_budget_fraction = min(0.99, (spent_seconds + options.cc_stage_budget_fraction * trained_by_method)
                                               / method_seconds)
    if config.recipe:
        config.recipe["reasons"]["train.budget_seconds"] = (
            f"{config.train.budget_seconds:.0f} s from the process's start: reading and embedding the images took "
            f"{spent_seconds:.0f} s, then the vectors' {vectors:.0f} s (an MLP needs minutes), within the "
            f"{whole / 60:.0f} minutes of a job on images; the epochs are planned from the measured speed")


def _cpu_batch_reason(photos: bool) -> str:
    if not photos:
        return "small batches give a CPU more optimiser steps in its time; "
    return ("small batches give a CPU more optimiser steps in its time (on photos, 256 with CC's 8-100% crops won "
            "on one set of 5 CIFAR-10 classes and lost on the other five, benchmarks/photo_recipe.py); ")


def _power_of_two_at_least(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


def _power_of_two_at_most(n: int) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(1, n)))))


def photo_backbone(profile: DataProfile):
    """Colour photos are embedded through a pretrained backbone when one is already cached (the rule in
    ``models/catalogue.py``): frozen features of such networks separate photos far better than what a CPU
    trains from scratch in minutes (docs/results.md, "Colour photos from scratch"). None for other data, or when none is cached."""
    from contraclust.models.catalogue import find_cached_backbone

    if not (profile.is_image and profile.channels == 3):
        return None
    return find_cached_backbone()


def read_for_a_cached_backbone(folder, read):
    """The photo route on an image folder, reading the folder once: when a known backbone is cached, the
    folder read as that backbone takes its images (``read(side)``: shorter side to ``side``, then the centre
    square), as (the cached backbone, its loaded network, the images). None when none is cached or the
    folder holds no colour photos (:func:`photo_backbone`'s rule): the caller reads it as the recipe does."""
    from contraclust.data.readers import is_image_folder
    from contraclust.models.catalogue import find_cached_backbone
    from contraclust.models.pretrained import load_backbone

    cached = find_cached_backbone() if folder and is_image_folder(folder) else None
    if cached is None:
        return None
    network = load_backbone(cached.backbone.spec, cached.weights)
    images = read(network.input_side)
    if DataProfile.of(images).channels != 3:
        return None
    return cached, network, images


def backbone_reason(cached) -> str:
    return (f"{cached.backbone.short} ({cached.backbone.summary}), frozen: colour photos, and its weights are in the "
            f"local cache ({cached.weights}); the images are embedded once and the vectors clustered "
            f"(--no-pretrained trains a network from scratch instead)")


DEFAULT_CLUSTERS = 10


def number_of_clusters(data, typed: str | None) -> tuple[int, str]:
    """K when ``-k`` is not given, and the line that says why: one cluster per class where the data has
    classes (class folders, a labelled set), else the default with a pointer to ``suggest-k``."""
    classes = list(getattr(data, "class_names", None) or [])
    if data.labels is not None:
        classes = classes or sorted({int(label) for label in data.labels.tolist()})
    where = typed or "mnist5k"
    if len(classes) >= 2:
        named = ", ".join(map(str, classes[:6])) + (", ..." if len(classes) > 6 else "")
        from contraclust.data.readers import is_image_folder

        kind = "class folder" if typed and is_image_folder(typed) else "class"
        return len(classes), f"K = {len(classes)}: one cluster per {kind} of {where} ({named}); -k sets another"
    return DEFAULT_CLUSTERS, (f"K = {DEFAULT_CLUSTERS}, the default: {where} has no classes to count; "
                              f"`contraclust suggest-k --data {where}` suggests K, -k sets it")


def recipe_lines(config) -> list[str]:
    """The ``auto`` recipe's choices, one line each with its reason."""
    if not config.recipe:
        return []
    data, device = config.recipe["data"], config.recipe["device"]
    what = (f"{data['n_samples']} {'grey' if data['channels'] == 1 else 'colour'} {data['size']} px images"
            if data["is_image"] else f"{data['n_samples']} vectors of {data['dim']} features")
    lines = [f"auto recipe for {data['name']} ({what}) on {device['description']}:"]
    lines += [f"  {field}: {reason}" for field, reason in config.recipe["reasons"].items()]
    return lines
