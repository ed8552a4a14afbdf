"""What several commands do alike: read the data a run is applied to, check where an output goes, print
the scores."""
from __future__ import annotations

import argparse
from pathlib import Path

from contraclust.config import config_from_dict
from contraclust.console import say
from contraclust.data.fingerprint import check_own_data
from contraclust.data.readers import is_image_folder
from contraclust.errors import ContraclustError, DataError
from contraclust.markers import RUN_LOCK
from contraclust.prepare import read_data
from contraclust.request import Reading

def output_file(path, what: str = "--output"):
    """Check that ``path`` can be written as a file (not a folder; its folder exists or can be made)."""
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


def reading_of(args: argparse.Namespace):
    """How a command's arguments ask the data to be read (``prepare.Reading``)."""
    return Reading(label_column=getattr(args, "label_column", None), id_column=getattr(args, "id_column", None),
                   image_size=getattr(args, "image_size", None), progress=not getattr(args, "no_progress", False))


def load_run_data(args: argparse.Namespace, state: dict, source, need_labels: bool = False):
    """For evaluate, predict and report: ``--data`` when given, made what the model in ``source`` takes (image
    files read at its side, grey made colour or colour grey, said in one line; any other shape refused naming
    both), else the run's own data, from its stored absolute path from any working folder, refused unless it
    is what the run trained on (the checkpoint's fingerprint of it). ``need_labels``: data without labels is
    refused first."""
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


def metrics_line(metrics: dict) -> str:
    return "  ".join(f"{k.upper()} {metrics[k]:.4f}" for k in ("nmi", "acc", "ari"))
