"""What several commands share: the data and device arguments, loading data, printing metrics."""
from __future__ import annotations

import argparse
import sys

DATA_HELP = ("mnist5k (default, embedded), digits, a folder of images (class sub-folders or flat), a CIFAR "
             "pickle folder (cifar-10-batches-py), an .npy/.npz array, or a .csv/.tsv/.parquet table of features")


def add_data_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--data", default=None, metavar="PATH_OR_NAME", help=DATA_HELP)
    cmd.add_argument("--label-column", default=None, metavar="NAME",
                     help="for a .csv/.tsv/.parquet table: the column of ground-truth labels (not a feature)")
    cmd.add_argument("--id-column", default=None, metavar="NAME",
                     help="for a table: the column of sample ids, carried into assignments.csv (not a feature)")
    cmd.add_argument("--image-size", type=image_side, default=None, metavar="PIXELS",
                     help="resize images of a folder to this square size when loading (default: keep their size, "
                          "shrinking any larger than the recipe's input size)")


def add_backbone_args(cmd: argparse.ArgumentParser, required: bool = False) -> None:
    cmd.add_argument("--backbone", required=required, default=None, metavar="FAMILY:NAME",
                     help="a frozen pretrained image backbone: hf:NAME_OR_DIR (transformers: DINOv2, CLIP), "
                          "timm:NAME or torchvision:NAME")
    cmd.add_argument("--weights", default=None, metavar="FILE_OR_DIR",
                     help="the backbone's weights, from a local file or folder (default: the library's cache)")
    cmd.add_argument("--download", action="store_true",
                     help="allow downloading the backbone's weights (never done otherwise)")


def add_threads_arg(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--threads", type=threads_arg, default=None, metavar="N",
                     help="CPU threads for training, embedding and decoding images (default: auto, chosen from "
                          "the measured speed, which beside other busy programs is often fewer than the cores; "
                          "OMP_NUM_THREADS is honoured too). A fixed count also makes a CPU run bit-reproducible")


def threads_arg(text: str):
    """An argparse type: ``auto`` or a whole number of at least 1."""
    return None if text.strip().lower() == "auto" else positive_int(text)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def image_side(text: str) -> int:
    """An argparse type: a side in pixels, 4 to the largest the views are made at."""
    from contraclust.config import MAX_SIDE

    value = positive_int(text)
    if not 4 <= value <= MAX_SIDE:
        raise argparse.ArgumentTypeError(f"must be between 4 and {MAX_SIDE} pixels, got {value}")
    return value


def written_path(text: str):
    """An argparse type for a folder or file a command writes: not empty (the working folder by accident),
    not a filesystem root."""
    from pathlib import Path

    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; name a folder or file to write")
    path = Path(text).expanduser()
    resolved = path.resolve()
    if resolved.parent == resolved:
        raise argparse.ArgumentTypeError(f"{text} is a filesystem root; name a folder inside it")
    return path


def override(text: str) -> str:
    """An argparse type: SECTION.FIELD=VALUE (what --set takes)."""
    path, equals, _ = text.partition("=")
    if not equals or not path.strip() or "." not in path:
        raise argparse.ArgumentTypeError(f"{text!r} must look like SECTION.FIELD=VALUE, e.g. optim.lr=1e-3")
    return text


def output_file(path, what: str = "--output"):
    """Check that ``path`` can be written as a file (not a folder; its folder exists or can be made)."""
    from pathlib import Path

    from contraclust.errors import ContraclustError

    path = Path(path)
    if path.is_dir():
        raise ContraclustError(f"{what} {path} is a folder; name a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ContraclustError(f"cannot create the folder of {what} {path}: {exc.strerror or exc}") from None
    return path


def refuse_writing_into(path, data_spec, what: str) -> None:
    """Writing ``what`` at ``path`` must not touch the data or a run: ``path`` may not be the data file, lie
    inside the data folder (the next read would count it as images), or lie inside a run folder (its
    checkpoints, its own files)."""
    from pathlib import Path

    from contraclust.errors import ContraclustError
    from contraclust.markers import RUN_LOCK

    target = Path(path).expanduser().resolve()
    if data_spec is not None and Path(str(data_spec)).expanduser().exists():
        data = Path(str(data_spec)).expanduser().resolve()
        if target == data:
            raise ContraclustError(f"{what} {path} is the data itself; choose another file")
        if data.is_dir() and data in target.parents:
            raise ContraclustError(f"{what} {path} lies inside the data folder {data_spec}: the next read of the data "
                                   f"would take it for data; choose a place outside it")
    for folder in (target, *target.parents):
        if (folder / RUN_LOCK).exists():
            raise ContraclustError(f"{what} {path} lies inside the run folder {folder}; choose a place outside it")


def add_device_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    add_threads_arg(cmd)
    cmd.add_argument("--no-progress", action="store_true", help="no progress bars")


def reading_of(args: argparse.Namespace):
    """How a command's arguments ask the data to be read (``prepare.Reading``)."""
    from contraclust.request import Reading

    return Reading(label_column=getattr(args, "label_column", None), id_column=getattr(args, "id_column", None),
                   image_size=getattr(args, "image_size", None), progress=not getattr(args, "no_progress", False))


def load_run_data(args: argparse.Namespace, state: dict, source, need_labels: bool = False):
    """For evaluate, predict and report: ``--data`` when given, made what the model in ``source`` takes (image
    files read at its side, grey made colour or colour grey, said in one line; any other shape refused naming
    both), else the run's own data, from its stored absolute path from any working folder, refused unless it
    is what the run trained on (the checkpoint's fingerprint of it). ``need_labels``: data without labels is
    refused first."""
    from pathlib import Path

    from contraclust.config import config_from_dict
    from contraclust.console import say
    from contraclust.data.fingerprint import check_own_data
    from contraclust.data.readers import is_image_folder
    from contraclust.errors import DataError
    from contraclust.prepare import read_data

    config = config_from_dict(state["config"])
    device = getattr(args, "device", "auto")
    if args.data is None:
        typed = f" (given as {config.data_as_typed})" if config.data_as_typed not in (None, config.data) else ""
        if config.data is not None and Path(config.data).is_absolute() and not Path(config.data).exists():
            raise DataError(f"the run's data {config.data}{typed} is not there any more; give --data")
        data = read_data(config.data, reading_of(args), config.augment.size, config, device=device)
        if need_labels and data.labels is None:
            raise DataError(f"{data.name} has no labels to evaluate against (use class sub-folders or a y array)")
        check_own_data(state.get("data_fingerprint"), data, f"{config.data or 'mnist5k'}{typed}")
        return data, config
    wanted = tuple((state.get("data_fingerprint") or {}).get("shape") or ())
    images = len(wanted) == 3 and not config.frozen_backbone
    side = wanted[1] if images and is_image_folder(args.data) and not args.image_size else None
    data = read_data(args.data, reading_of(args), config.augment.size, config, side=side, device=device)
    if need_labels and data.labels is None:
        raise DataError(f"{data.name} has no labels to evaluate against (use class sub-folders or a y array)")
    if images and data.is_image and data.sample_shape[0] != wanted[0]:
        say(f"{data.name}: {'grey' if wanted[0] == 3 else 'colour'} images; the model in {source} takes "
            f"{'colour' if wanted[0] == 3 else 'grey'} ones: each is read as {'RGB' if wanted[0] == 3 else 'grey'}")
        data = data.with_channels(wanted[0])
    if wanted and tuple(data.sample_shape) != wanted:
        kind = lambda shape: "images" if len(shape) == 3 else "vectors"  # noqa: E731
        resizable = images and data.is_image and is_image_folder(args.data)
        hint = f"; give --image-size {wanted[1]}" if resizable else ""
        raise DataError(f"the model in {source} takes {kind(wanted)} of shape {'x'.join(map(str, wanted))}; "
                        f"{data.name} holds {kind(data.sample_shape)} of shape "
                        f"{'x'.join(map(str, data.sample_shape))}{hint}")
    return data, config


def add_pretrained_arg(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--no-pretrained", action="store_true",
                     help="colour photos: train a network from scratch even when a known pretrained backbone is in "
                          "the local cache (auto embeds them through it by default; same as --backbone none)")


def metrics_line(metrics: dict) -> str:
    return "  ".join(f"{k.upper()} {metrics[k]:.4f}" for k in ("nmi", "acc", "ari"))


def error(message: str) -> None:
    error_line(f"error: {message}")


def error_line(message: str) -> None:
    """``contraclust: message`` on stderr, on a line of its own: a progress bar still drawn is closed first."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ()) or ()):
        bar.close()
    print(f"contraclust: {message}", file=sys.stderr)
