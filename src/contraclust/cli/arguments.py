"""The arguments several commands share, argparse types that check a value where it is typed, and the
one-line error output: light (argparse and the standard library), for the parser and ``--help``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contraclust.config import MAX_SIDE

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
    value = positive_int(text)
    if not 4 <= value <= MAX_SIDE:
        raise argparse.ArgumentTypeError(f"must be between 4 and {MAX_SIDE} pixels, got {value}")
    return value


def written_path(text: str):
    """An argparse type for a folder or file a command writes: not empty (the working folder by accident),
    not a filesystem root."""
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


def add_device_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    add_threads_arg(cmd)
    cmd.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_pretrained_arg(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--no-pretrained", action="store_true",
                     help="colour photos: train a network from scratch even when a known pretrained backbone is in "
                          "the local cache (auto embeds them through it by default; same as --backbone none)")


def error(message: str) -> None:
    error_line(f"error: {message}")


def error_line(message: str) -> None:
    """``contraclust: message`` on stderr, on a line of its own: a progress bar still drawn is closed first."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ()) or ()):
        bar.close()
    print(f"contraclust: {message}", file=sys.stderr)
