"""``contraclust presets --data X``: the recipe ``fit`` would choose for that data when no preset is named."""
from __future__ import annotations

from contraclust.cli.common import reading_of
from contraclust.prepare import cached_photo_backbone, prepare
from contraclust.recipes.auto import DataProfile, backbone_reason, recipe_lines
from contraclust.request import FitRequest


def run(args) -> int:
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
