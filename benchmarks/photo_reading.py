"""Reading a folder of phone photos: the reader's time per photo, and what it holds in memory, before
(each JPEG decoded whole, one after another) and now (decoded by libjpeg at 1/2 to 1/8 scale, never below
the size asked for, on a thread per core), for the from-scratch CPU recipe (32 px, squeezed square as
before) and for a frozen pretrained backbone (224 px: the shorter side to 224 and the centre square, where
the route before held every photo whole and let the backbone resize it).

    python benchmarks/photo_reading.py                          # 200 photos of 4032 x 3024 (12 MP)
    python benchmarks/photo_reading.py --photos 8 --side 400    # smoke run

The photos are CIFAR-10 images (../shared/datasets/cifar10) enlarged to the phone's size with a little
noise, saved as JPEG at quality 92; a CIFAR-less machine gets smooth random images instead. The reader's
cache is off (CONTRACLUST_NO_CACHE), so every run decodes. "before" repeats what the reader did before
the change, in this process: open, turn upright, convert, then resize (32 px) or keep whole (the backbone
route), file by file; its memory is the arrays' bytes (not kept: 200 whole photos would be 7 GB).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

os.environ["CONTRACLUST_NO_CACHE"] = "1"
from contraclust.data import load_data  # noqa: E402  (after the cache is turned off)

DEFAULT_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10"


def write_photos(folder: Path, count: int, width: int, height: int, cifar: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted((cifar / "train" / "cat").glob("*.jpg"))[:count] if cifar.is_dir() else []
    rng = np.random.default_rng(0)
    files = []
    for i in range(count):
        if i < len(sources):
            with Image.open(sources[i]) as source:
                base = source.convert("RGB").resize((width, height), Image.BICUBIC)
        else:
            coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            base = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
        noisy = np.asarray(base).astype(np.int16) + rng.integers(-8, 9, (height, width, 3))
        files.append(folder / f"IMG_{i:04d}.jpg")
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(files[-1], quality=92)
    return files


def read_before(files: list[Path], size: int | None) -> tuple[np.ndarray | None, int]:
    """The reader before the change: every JPEG decoded whole, one after another, and resized to ``size``
    (None: kept whole, as the backbone route did); the images (None when whole) and their bytes."""
    images, held = [], 0
    for file in files:
        with Image.open(file) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
            array = np.asarray(img.resize((size, size), Image.BILINEAR) if size else img)
            held += array.nbytes
            if size:
                images.append(array)
    return (np.stack(images).transpose(0, 3, 1, 2) if size else None), held


def timed(read):
    began = time.perf_counter()
    result = read()
    return result, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--side", type=int, default=4032, help="the photos' width; height is 3/4 of it")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    parser.add_argument("--cifar", type=Path, default=DEFAULT_CIFAR)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="contraclust-photos-") as work:
        folder = Path(work) / "phone"
        files = write_photos(folder, args.photos, args.side, args.side * 3 // 4, args.cifar)
        megabytes = sum(f.stat().st_size for f in files) / 1e6
        print(f"{len(files)} JPEG photos of {args.side} x {args.side * 3 // 4} ({megabytes / len(files):.1f} MB "
              f"each); {os.cpu_count()} cores\n")
        print("| read for | before: ms per photo | now: ms per photo | speed-up | 5,000 photos before | 5,000 now "
              "| held per photo before | now | mean abs pixel difference |")
        print("|---|---|---|---|---|---|---|---|---|")
        for size in args.sizes:
            backbone = size >= 96
            (old, held), before = timed(lambda: read_before(files, None if backbone else size))
            new, now = timed(lambda: load_data(folder, image_size=size, centre_crop=backbone,
                                               progress=False).tensor.numpy())
            difference = "" if old is None else f"{np.abs(old.astype(float) - new.astype(float)).mean():.2f}"
            per_old, per_new = 1000 * before / len(files), 1000 * now / len(files)
            label = f"{size} px, a backbone's centre square" if backbone else f"{size} px, from scratch"
            print(f"| {label} | {per_old:.1f} | {per_new:.1f} | {before / now:.1f}x | {5 * per_old:.0f} s "
                  f"| {5 * per_new:.0f} s | {held / len(files) / 1e3:.1f} KB | {new[0].nbytes / 1e3:.1f} KB "
                  f"| {difference} |", flush=True)


if __name__ == "__main__":
    main()
