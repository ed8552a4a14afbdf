"""``contraclust pack``: an image folder packed once into a memory-mappable ``.ccpack`` (``data/pack.py``)."""
from __future__ import annotations

import argparse

from contraclust.data.pack import pack_folder, read_meta


def run(args: argparse.Namespace) -> int:
    out = pack_folder(args.data, args.output, args.size, args.channels, args.workers, not args.no_progress,
                      image_format=args.image_format, quality=args.quality)
    meta = read_meta(out)
    on_disk = sum(f.stat().st_size for f in out.iterdir()) / 2 ** 30
    print(f"packed {meta['n']} images ({len(meta['classes'])} classes) at {meta['size']} px, "
          f"{meta['channels']} channel(s), {meta['kind']}, {on_disk:.2f} GB on disk: {out}")
    return 0
