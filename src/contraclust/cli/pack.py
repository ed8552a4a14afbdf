"""``contraclust pack``: an image folder packed once into a memory-mappable ``.ccpack`` (``data/pack.py``)."""
from __future__ import annotations

import argparse
from pathlib import Path

from contraclust.cli.common import positive_int, written_path

EXAMPLES = """examples:
  contraclust pack --data imagenet/train --size 64 --output imagenet64.ccpack   # 1.28M images, 15.7 GB
  contraclust pack --data imagenet/train --size 64 --output imagenet64.ccpack   # again after a kill: resumes
  contraclust fit --data imagenet64.ccpack --preset clc-imagenet1k-64 --device cuda
"""


def add_parser(sub) -> None:
    cmd = sub.add_parser(
        "pack", help="pack an image folder into a memory-mappable .ccpack for sets larger than memory",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Decode every image under --data (one sub-folder per class gives labels), resize it to "
                    "--size x --size and write them as one uint8 array with the labels and file paths. Training "
                    "reads it through a memory map: resident on the device when it fits, streamed when it does "
                    "not. Packing is resumable: run the same command again after an interruption.")
    cmd.add_argument("--data", required=True, type=Path, help="the image folder")
    cmd.add_argument("--size", required=True, type=positive_int, help="side of the packed images in pixels")
    cmd.add_argument("--output", required=True, type=written_path, help="the pack to write, a folder ending in .ccpack")
    cmd.add_argument("--channels", type=int, choices=(1, 3), default=None,
                     help="1 (grey) or 3 (RGB); default: grey when the first 64 images are grey")
    cmd.add_argument("--format", dest="image_format", choices=("raw", "jpeg"), default="raw",
                     help="raw: uint8 pixels, memory-mapped (default); jpeg: the resized images as JPEG bytes, about "
                          "a tenth of the size for large --size, decoded per batch (on the GPU with torchvision)")
    cmd.add_argument("--quality", type=int, default=90, help="JPEG quality of --format jpeg (default 90)")
    cmd.add_argument("--workers", type=positive_int, default=None, help="decoding processes (default: every core)")
    cmd.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from contraclust.data.pack import pack_folder, read_meta

    out = pack_folder(args.data, args.output, args.size, args.channels, args.workers, not args.no_progress,
                      image_format=args.image_format, quality=args.quality)
    meta = read_meta(out)
    on_disk = sum(f.stat().st_size for f in out.iterdir()) / 2 ** 30
    print(f"packed {meta['n']} images ({len(meta['classes'])} classes) at {meta['size']} px, "
          f"{meta['channels']} channel(s), {meta['kind']}, {on_disk:.2f} GB on disk: {out}")
    return 0
