"""``contraclust methods`` and ``contraclust presets`` (with ``--data``: what ``auto`` would choose)."""
from __future__ import annotations

from contraclust.cli.common import reading_of
from contraclust.methods import METHODS
from contraclust.prepare import cached_photo_backbone, prepare
from contraclust.presets import PRESETS
from contraclust.recipes.auto import DataProfile, backbone_reason, recipe_lines
from contraclust.request import FitRequest


def run_methods(args) -> int:
    _print_rows({n: c.summary for n, c in METHODS.items()})
    return 0


def run_presets(args) -> int:
    if args.data is None and args.clusters is None:
        _print_rows({"auto": "chosen from the data and the device, sized by a time budget (presets --data X)",
                     **{n: text for n, (_, text) in PRESETS.items()}})
        return 0

    asked = FitRequest(args.data, n_clusters=args.clusters, reading=reading_of(args), backbone="none",
                       device=args.device, report=False, name_a_folder=False)
    prepared = prepare(asked)  # the from-scratch recipe that fit would train, K and all
    config, profile = prepared.config, DataProfile.of(prepared.data)
    cached = None if args.no_pretrained else cached_photo_backbone(profile, asked)
    if cached is not None:
        print(f"auto recipe for {profile.name}: fit embeds the images through {backbone_reason(cached)}; "
              f"the recipe below is the from-scratch one")
    for line in recipe_lines(config):
        print(line)
    t, m = config.train, config.model
    print(f"  => {config.method}, {m.backbone} at {config.augment.size} px, batch {t.batch_size}, "
          f"{config.optim.name} lr {config.optim.lr:g}, budget {t.budget_seconds:.0f} s")
    return 0


def _print_rows(rows: dict[str, str]) -> None:
    width = max(map(len, rows))
    for name, text in rows.items():
        print(f"{name:{width}s}  {text}")
