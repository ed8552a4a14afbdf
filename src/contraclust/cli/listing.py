"""``contraclust methods`` and ``contraclust presets``: the listings (light: no torch; ``presets --data`` is
``cli/recipe.py``)."""
from __future__ import annotations

from contraclust.methods import SUMMARIES
from contraclust.presets import PRESETS


def run_methods(args) -> int:
    print_rows(SUMMARIES)
    return 0


def run_presets(args) -> int:
    print_rows({"auto": "chosen from the data and the device, sized by a time budget (presets --data X)",
                **{n: text for n, (_, text) in PRESETS.items()}})
    return 0


def print_rows(rows: dict[str, str]) -> None:
    width = max(map(len, rows))
    for name, text in rows.items():
        print(f"{name:{width}s}  {text}")
