"""``contraclust embed``: images through a frozen pretrained backbone, saved as feature vectors."""
from __future__ import annotations

import numpy as np

from contraclust.cli.common import output_file, reading_of, refuse_writing_into
from contraclust.errors import ContraclustError
from contraclust.files import open_whole
from contraclust.prepare import read_embedded
from contraclust.training.device import resolve_device


def run(args) -> int:
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
