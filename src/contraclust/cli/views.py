"""``contraclust views``: a picture of what the augmentation does to a few images."""
from __future__ import annotations

from pathlib import Path

from contraclust.cli.common import (
    add_data_args, output_file, positive_int, reading_of, refuse_writing_into, written_path,
)


def add_parser(sub) -> None:
    from contraclust.presets import PRESETS

    views = sub.add_parser("views", help="save a picture of augmented views of a batch",
                           description="Save a grid: each column an image, then two augmented views of it.")
    add_data_args(views)
    views.add_argument("--preset", choices=["auto", *PRESETS], default=None, metavar="NAME",
                       help="whose augmentation (default: auto's for this data on the CPU)")
    views.add_argument("-n", type=positive_int, default=8, help="how many images")
    views.add_argument("--seed", type=int, default=0)
    views.add_argument("--output", type=written_path, default=Path("views.png"))


def run(args) -> int:
    import torch

    from contraclust.prepare import read_data, read_for_the_recipe
    from contraclust.presets import build_config, get_preset
    from contraclust.report.plots import save_view_grid

    refuse_writing_into(args.output, args.data, "--output")
    output_file(args.output)
    if args.preset in (None, "auto"):
        data, profile = read_for_the_recipe(args.data, reading_of(args), torch.device("cpu"))
        config = build_config(None, None, profile=profile, device="cpu")
    else:
        config = get_preset(args.preset)
        data = read_data(args.data, reading_of(args), config.augment.size)
    save_view_grid(data, config.augment, args.output, n=args.n, seed=args.seed)
    print(f"wrote {args.output}")
    return 0
