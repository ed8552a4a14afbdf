"""The self-labelling stage alone, from a trained network, under chosen settings: how the threshold, the
per-cluster share and the stage's length move the result (docs/self-labelling.md, "Choosing the threshold").

    python benchmarks/default_job.py --seeds 0 --budget 150s --then self-label --workdir /tmp/sl
    python benchmarks/self_label_settings.py /tmp/sl/seed0-self-label/before-self-label --set self_label.epochs=4
    python benchmarks/self_label_settings.py RUN_STAGE --set self_label.threshold=0.99 --set self_label.epochs=4

RUN_STAGE: a folder whose checkpoint is the network before the stage (a run's ``before-self-label/``); its
run's ``config.json`` (one folder up) gives the data and settings. The stage runs on MNIST-5k for
``self_label.epochs`` (no budget) and prints, per epoch, the share of each batch that got a pseudo-label and
the loss, then NMI/ACC at the end.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from contraclust.config import apply_overrides, read_config_file
from contraclust.data import read_mnist5k
from contraclust.methods import build_method
from contraclust.methods.self_label import SelfLabel
from contraclust.run.stages import self_labelling_config
from contraclust.training.checkpoint import load_checkpoint
from contraclust.training.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", type=Path, help="the folder of the network before self-labelling")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    args = parser.parse_args()
    config = read_config_file(args.stage.parent / "config.json")
    config.train.budget_seconds = 0.0
    apply_overrides(config, args.overrides)
    stage = self_labelling_config(config)
    stage.train.progress = False
    data = read_mnist5k()
    method = SelfLabel(build_method(stage, data.sample_shape), stage.self_label, data.sample_shape)
    trainer = Trainer(stage, data, None, "cpu", init_state=load_checkpoint(args.stage)["model"], method=method)
    result = trainer.fit()
    for row in trainer.history:
        print(f"epoch {row['epoch']}: pseudo-labelled {row['pseudo_labelled']:.3f}  loss {row['self_labelling']:.3f}")
    print(f"after the stage ({', '.join(args.overrides) or 'defaults'}): NMI {result.metrics['nmi']:.3f}  "
          f"ACC {result.metrics['acc']:.3f}  ARI {result.metrics['ari']:.3f}")


if __name__ == "__main__":
    main()
