"""``contraclust views``: a picture of what the augmentation does to a few images."""
from __future__ import annotations

import torch

from contraclust.cli.common import output_file, reading_of, refuse_writing_into
from contraclust.prepare import read_data, read_for_the_recipe
from contraclust.presets import build_config, get_preset
from contraclust.report.plots import save_view_grid


def run(args) -> int:
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
