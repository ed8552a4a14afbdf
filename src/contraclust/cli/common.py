"""What several commands share: the data and device arguments, loading data, printing metrics."""
from __future__ import annotations

import argparse
import sys

DATA_HELP = ("mnist5k (default, embedded), digits, a folder of images (class sub-folders or flat), a CIFAR "
             "pickle folder (cifar-10-batches-py), or an .npy/.npz file")


def add_data_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--data", default=None, metavar="PATH_OR_NAME", help=DATA_HELP)
    cmd.add_argument("--image-size", type=positive_int, default=None, metavar="PIXELS",
                     help="resize images of a folder to this square size when loading (default: keep their size, "
                          "shrinking any larger than the recipe's input size)")


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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


def add_device_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    cmd.add_argument("--no-progress", action="store_true", help="no progress bars")


def load(spec, args: argparse.Namespace, max_size: int | None):
    from contraclust.data import load_data

    return load_data(spec, image_size=args.image_size, max_size=max_size,
                     progress=not getattr(args, "no_progress", False))


def load_auto(spec, args: argparse.Namespace, device):
    """Data for the ``auto`` recipe: images no larger than the device's cap, and the data's profile."""
    from contraclust.recipes.auto import DataProfile, DeviceProfile, max_image_size

    data = load(spec, args, max_image_size(DeviceProfile.of(device)))
    return data, DataProfile.of(data)


def metrics_line(metrics: dict) -> str:
    return "  ".join(f"{k.upper()} {metrics[k]:.4f}" for k in ("nmi", "acc", "ari"))


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


def error(message: str) -> None:
    print(f"contraclust: error: {message}", file=sys.stderr)
