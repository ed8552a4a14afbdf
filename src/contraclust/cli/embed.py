"""``contraclust embed``: images through a frozen pretrained backbone, saved as feature vectors."""
from __future__ import annotations

from pathlib import Path

from contraclust.cli.common import (
    add_backbone_args, add_data_args, add_threads_arg, output_file, reading_of, refuse_writing_into, written_path,
)


def add_parser(sub) -> None:
    text = "embed images with a frozen pretrained backbone and save the vectors (.npy, or .npz with labels and paths)"
    cmd = sub.add_parser("embed", help=text, description=text + ". Cluster them with fit --data OUTPUT.")
    add_data_args(cmd)
    add_backbone_args(cmd, required=True)
    cmd.add_argument("--output", type=written_path, default=Path("embeddings.npz"),
                     help="a .npz (x, y when labelled, paths) or a .npy (the vectors only)")
    cmd.add_argument("--batch-size", type=int, default=64)
    cmd.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    add_threads_arg(cmd)
    cmd.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    import numpy as np

    from contraclust.errors import ContraclustError
    from contraclust.files import open_whole
    from contraclust.prepare import read_embedded
    from contraclust.training.device import resolve_device

    if args.output.suffix not in (".npy", ".npz"):
        raise ContraclustError(f"--output must end in .npy or .npz, got {args.output}")
    refuse_writing_into(args.output, args.data, "--output")
    output_file(args.output)
    vectors = read_embedded(args.data, reading_of(args), args.backbone, args.weights, args.download,
                            resolve_device(args.device), args.batch_size)
    x = vectors.features.numpy()
    with open_whole(args.output, "wb") as handle:  # whole or not at all (a full disk leaves no partial file)
        if args.output.suffix == ".npy":
            np.save(handle, x)
        else:
            extra = {"y": vectors.labels} if vectors.labels is not None else {}
            np.savez(handle, x=x, paths=np.array(vectors.ids), **extra)
    print(f"wrote {x.shape[0]} x {x.shape[1]} vectors to {args.output}")
    return 0
