"""Every command's arguments, help and examples: the parser ``contraclust`` builds before it runs anything.

It imports argparse and the light registries (methods, presets, benchmarks) only, so that ``--help`` and a
usage error answer in a fraction of a second; what a command does lives in its own module
(``cli/fit.py``, ...), which ``main`` imports once the command is known.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contraclust.cli.arguments import (
    DATA_HELP, add_backbone_args, add_data_args, add_device_args, add_pretrained_arg, add_threads_arg, override,
    positive_int, written_path,
)
from contraclust.data.benchmarks import BENCHMARKS
from contraclust.methods import METHOD_NAMES, SUMMARIES
from contraclust.presets import PRESETS

EPILOG = """examples:
  contraclust fit                                   # the default job: MNIST-5k, auto recipe, 10 min on a CPU
  contraclust fit --data my_images/ -k 5 --out runs/mine   # any images: auto recipe within the default budget
  contraclust fit --data ../shared/datasets/cifar10 --preset cc-paper-cifar10 --device cuda
  contraclust fit --out runs/mine --resume           # continue a killed run exactly
  contraclust presets --data my_images/              # what the auto recipe would choose, and why
  contraclust suggest-k --data my_images/ --range 2:20  # how many clusters? signals per K and a recommendation
  contraclust evaluate runs/mine --data my_images/
  contraclust predict runs/mine --data my_images/ --output clusters.csv --copy-into sorted/
  contraclust report runs/mine                       # runs/mine/report.html (fit writes it too)
  contraclust reproduce --method cc --dataset cifar10 --data cifar10/ --limit 500 --epochs 1   # paper vs measured
  contraclust pack --data imagenet/train --size 64 --output in64.ccpack   # larger than memory: stream it
  contraclust embed --data my_images/ --backbone hf:facebook/dinov2-small --output emb.npz
  contraclust fit --data emb.npz -k 10 --method clc  # cluster vectors (also .csv/.tsv/.parquet tables)
"""


FIT_EXAMPLES = """examples:
  contraclust fit                                   # the default job: MNIST-5k, auto recipe, 10 min on a CPU
  contraclust fit --data my_images/ -k 5            # any folder: auto recipe, 10 min on a CPU, 30 on a GPU
  contraclust fit --data my_images/ -k 5 --budget 1h --out runs/mine
  contraclust fit --method cc --budget 90s          # plain CC, within 90 seconds
  contraclust fit --data ../shared/datasets/cifar10 --preset cc-paper-cifar10 --device cuda
  contraclust fit --out runs/mine --resume           # continue a killed run exactly
  contraclust fit --data my_images/ -k 5 --no-report   # no report.html at the end
  contraclust fit --data my_images/ -k 5 --then self-label   # end with a self-labelling stage
  contraclust fit --data emb.npy -k 20 --method clc    # feature vectors (.npy/.npz/.csv/.tsv/.parquet)
  contraclust fit --data my_images/ -k 10 --backbone dinov2-small --freeze --download   # fetch DINOv2 once
  contraclust fit --data my_photos/ -k 5 --no-pretrained   # from scratch, even with a backbone in the cache
  contraclust fit --data my_images/ -k 8 --cluster-prior estimated    # clusters of unequal sizes
"""


PACK_EXAMPLES = """examples:
  contraclust pack --data imagenet/train --size 64 --output imagenet64.ccpack   # 1.28M images, 15.7 GB
  contraclust pack --data imagenet/train --size 64 --output imagenet64.ccpack   # again after a kill: resumes
  contraclust fit --data imagenet64.ccpack --preset clc-imagenet1k-64 --device cuda
"""


REPRODUCE_EXAMPLES = """examples:
  contraclust reproduce --method cc --dataset cifar10 --data ../shared/datasets/cifar10 --limit 500 --epochs 1
  contraclust reproduce --method cc --dataset cifar10 --data cifar10/ --budget 10m --preset cifar10-fast --device cuda
  contraclust reproduce --method cc --dataset stl10 --data stl10_binary/ --device cuda     # 1000 epochs, as CC
  contraclust reproduce --method cc --dataset cifar10 --data cifar10/ --checkpoint runs/mine   # evaluate only
"""


SUGGEST_K_EXAMPLES = """examples:
  contraclust suggest-k --range 2:30                      # MNIST-5k, the auto recipe's network, 10 min on a CPU
  contraclust suggest-k --data my_images/ --range 2:20 --budget 5m --out runs/k
  contraclust suggest-k --data emb.npy --range 5,10,20,40
"""


def add_fit_parser(sub) -> None:
    fit = sub.add_parser("fit", help="train a clustering model and write a run folder",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=FIT_EXAMPLES,
                         description="Train a method on data; writes config.json, log.csv, checkpoints/, "
                                     "assignments.csv, metrics.json and report.html into --out. Without --preset the auto "
                                     "recipe is chosen from the data and the device and sized by a time budget "
                                     "(10 minutes on a CPU, 30 on a GPU); `contraclust presets --data X` shows it.")
    add_data_args(fit)
    fit.add_argument("--method", choices=list(SUMMARIES), default=None,
                     help="clustering method (default: the recipe's; auto: c3, a CC stage then C3). " +
                     "; ".join(f"{n}: {summary}" for n, summary in SUMMARIES.items()))
    fit.add_argument("--preset", choices=["auto", *PRESETS], default=None, metavar="NAME",
                     help="named settings, used exactly as written (default: auto, chosen from the data and the "
                          "device). One of: auto, " + ", ".join(PRESETS))
    fit.add_argument("-k", "--clusters", type=int, default=None,
                     help="number of clusters K (default: one per class folder of --data, else 10; "
                          "`contraclust suggest-k` suggests one)")
    fit.add_argument("--budget", default=None, metavar="DURATION",
                     help="wall time for the whole run, e.g. 90s, 10m, 2h: the epochs are planned from the measured "
                          "speed so that training, evaluations and the final files end in time "
                          "(default: auto's 10 min on a CPU, 30 min on a GPU; named presets run their epochs)")
    fit.add_argument("--epochs", type=int, default=None,
                     help="a fixed number of epochs instead of a time budget (wins over --budget)")
    fit.add_argument("--batch-size", type=int, default=None, help="global batch size (default: the recipe's)")
    fit.add_argument("--seed", type=int, default=None, help="random seed (default: 42)")
    fit.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                     type=override,
                     help="override any config field, e.g. --set optim.lr=1e-3 --set augment.blur_p=0.5 "
                          "--set method.tau_instance=0.3 (repeatable; sections: augment, model, optim, train, method)")
    fit.add_argument("--out", type=written_path, default=None,
                     help="run folder (default: runs/<preset>-<method>-seed<seed>)")
    fit.add_argument("--force", action="store_true",
                     help="write a new run into --out even though it holds other files (beside them, never over "
                          "them; a folder holding a run is still refused)")
    fit.add_argument("--resume", action="store_true",
                     help="continue the run in --out from its newest checkpoint, with its saved config and its "
                          "time plan (--epochs may extend it)")
    fit.add_argument("--then", choices=["self-label"], default=None,
                     help="end the run with a stage: self-label trains the network on its own confident predictions "
                          "(cross-entropy on strong views, class-balanced, as SCAN and TCL end theirs), in the last "
                          "quarter of a time budget or for 20 epochs (--set self_label.FIELD=VALUE tunes it)")
    fit.add_argument("--no-report", action="store_true",
                     help="do not write OUT/report.html (the clusters' galleries, curves and maps) at the end")
    fit.add_argument("--init", type=Path, default=None, metavar="RUN_OR_CHECKPOINT",
                     help="start from another run's weights (e.g. C3 from a CC run); --method c3 without it "
                          "trains a CC stage first, in OUT/cc-stage")
    fit.add_argument("--cluster-prior", choices=["uniform", "none", "estimated"], default=None,
                     help="what the balance term (CC's entropy, DRC's regulariser, CLC's Sinkhorn marginals) pulls the "
                          "cluster sizes towards: uniform (the papers'), none, or a prior estimated from the model's own "
                          "assignments with a floor so no cluster is emptied; for imbalanced data (default: uniform)")
    fit.add_argument("--prior-weight", type=float, default=None, metavar="W",
                     help="scales the balance term's weight (CLC: how strictly Sinkhorn meets the marginals, 0..1; "
                          "default 1)")
    fit.add_argument("--uncertain-below", type=float, default=None, metavar="P",
                     help="flag samples whose confidence is below P as uncertain in assignments.csv (default 0.5)")
    add_backbone_args(fit)
    fit.add_argument("--freeze", action="store_true",
                     help="with --backbone: embed the images once through the frozen backbone and cluster the vectors")
    add_pretrained_arg(fit)
    add_device_args(fit)


def add_embed_parser(sub) -> None:
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


def add_predict_parsers(sub) -> None:
    for name, text in (("evaluate", "score a trained model against the data's labels (NMI, ACC, ARI)"),
                       ("predict", "write cluster assignments (index, cluster, confidence) as CSV")):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("checkpoint", type=Path, help="a run folder or a checkpoint file (epoch_NNNN.pt)")
        add_data_args(cmd)
        add_device_args(cmd)
        if name == "predict":
            cmd.add_argument("--output", type=written_path, default=Path("assignments.csv"),
                             help="CSV to write: index (and path for files), cluster, confidence, the next two "
                                  "clusters with their probabilities, and label when known")
            sorting = cmd.add_mutually_exclusive_group()
            sorting.add_argument("--copy-into", type=written_path, default=None, metavar="DIR",
                                 help="also copy each image file into DIR/cluster_K/ (names kept, originals untouched)")
            sorting.add_argument("--link-into", type=written_path, default=None, metavar="DIR",
                                 help="as --copy-into, with symbolic links instead of copies")
            cmd.add_argument("--min-confidence", type=float, default=0.0, metavar="P",
                             help="with --copy-into/--link-into: images less sure than P go to DIR/uncertain/")
            cmd.add_argument("--uncertain-below", type=float, default=None, metavar="P",
                             help="flag samples whose confidence is below P as uncertain in the CSV (default: the "
                                  "run's, 0.5)")
        else:
            cmd.add_argument("--json", action="store_true", help="print the metrics as JSON")


def add_report_parser(sub) -> None:
    text = "write RUN_DIR/report.html: clusters with galleries, curves, confusion matrix, a map of the embeddings"
    cmd = sub.add_parser("report", help=text, description=text + ". Self-contained: open it from disk. It shows "
                         "what the run wrote when it finished; with --data, what its model makes of that data.")
    cmd.add_argument("run", type=Path, help="a run folder")
    add_data_args(cmd)
    cmd.add_argument("--device", default="auto", help="with --data: auto (CUDA if present), cpu, cuda or cuda:N")
    add_threads_arg(cmd)


def add_pack_parser(sub) -> None:
    cmd = sub.add_parser(
        "pack", help="pack an image folder into a memory-mappable .ccpack for sets larger than memory",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PACK_EXAMPLES,
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


def add_reproduce_parser(sub) -> None:
    cmd = sub.add_parser(
        "reproduce", help="train (or evaluate) a method on a paper's benchmark and compare with the paper",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=REPRODUCE_EXAMPLES,
        description="Trains METHOD on DATASET under the paper's protocol and preset (default: METHOD-paper-DATASET), "
                    "then prints the paper's NMI/ACC/ARI beside the measured ones at the last and at the best "
                    "evaluated epoch, with epochs, images/s and wall time; writes OUT/reproduce.json, "
                    "OUT/reproduce.md and the training run in OUT/run. Expected layouts: "
                    + "; ".join(f"{name}: {b.layout}" for name, b in BENCHMARKS.items()))
    cmd.add_argument("--method", required=True, choices=METHOD_NAMES, help="the method to reproduce")
    cmd.add_argument("--dataset", required=True, choices=list(BENCHMARKS), help="the paper benchmark")
    cmd.add_argument("--data", required=True, type=Path, metavar="PATH", help="where the benchmark lies on disk")
    cmd.add_argument("--preset", default=None, metavar="NAME",
                     help="settings to train with (default: METHOD-paper-DATASET; see contraclust presets)")
    length = cmd.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive_int, default=None, help="train this many epochs (default: the "
                                                                           "preset's, e.g. CC's 1000)")
    length.add_argument("--budget", default=None, metavar="DURATION", help="train within this wall time, e.g. 10m")
    cmd.add_argument("--limit", type=positive_int, default=None, metavar="N",
                     help="a stratified subset of N images (fixed seed), for smoke tests")
    cmd.add_argument("--checkpoint", type=Path, default=None, metavar="RUN_OR_CHECKPOINT",
                     help="evaluate this trained model instead of training")
    cmd.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's, 42)")
    cmd.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                     type=override,
                     help="override a preset field, e.g. --set train.eval_every=5 (repeatable)")
    cmd.add_argument("--out", type=written_path, default=None,
                     help="output folder (default: runs/reproduce-METHOD-DATASET, numbered when taken)")
    cmd.add_argument("--resume", action="store_true", help="continue the training run in --out after a kill")
    add_device_args(cmd)


def add_suggest_k_parser(sub) -> None:
    cmd = sub.add_parser(
        "suggest-k", help="suggest the number of clusters: one run with cluster heads for every K in a range",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SUGGEST_K_EXAMPLES,
        description="Trains one network (the auto recipe's model and views) with losses that name no K (CC's "
                    "instance contrast, then C3's cross-instance contrast), then two cluster heads for every K in "
                    "--range on its frozen features, and measures per K what needs no labels: assignment confidence and "
                    "entropy, cluster-size spread, agreement of two augmented views, stability (agreement of the "
                    "two heads), silhouette on the learned features; with labels also NMI/ACC/ARI, never used to "
                    "choose. Recommends the K with the highest stability x view agreement x silhouette and says "
                    "why. Writes OUT/suggest_k.md, suggest_k.json and suggest_k.png.")
    add_data_args(cmd)
    cmd.add_argument("--range", dest="k_range", default="2:30", metavar="LOW:HIGH",
                     help="the K to compare: LOW:HIGH, LOW:HIGH:STEP or K1,K2,... (default 2:30)")
    cmd.add_argument("--budget", default=None, metavar="DURATION",
                     help="wall time for the training, e.g. 5m (default: the auto recipe's, 10 min on a CPU)")
    cmd.add_argument("--epochs", type=int, default=None, help="a fixed number of epochs instead of a budget")
    cmd.add_argument("--heads-per-k", type=int, default=2, help="heads per K, started apart (default 2)")
    cmd.add_argument("--seed", type=int, default=None, help="random seed (default 42)")
    cmd.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                     type=override,
                     help="override a config field of the training, e.g. --set train.batch_size=128")
    cmd.add_argument("--out", type=written_path, default=None,
                     help="output folder, a run folder of its own (default: runs/suggest-k, numbered when taken)")
    add_device_args(cmd)


def add_views_parser(sub) -> None:
    views = sub.add_parser("views", help="save a picture of augmented views of a batch",
                           description="Save a grid: each column an image, then two augmented views of it.")
    add_data_args(views)
    views.add_argument("--preset", choices=["auto", *PRESETS], default=None, metavar="NAME",
                       help="whose augmentation (default: auto's for this data on the CPU)")
    views.add_argument("-n", type=positive_int, default=8, help="how many images")
    views.add_argument("--seed", type=int, default=0)
    views.add_argument("--output", type=written_path, default=Path("views.png"))


def add_listing_parsers(sub) -> None:
    sub.add_parser("methods", help="list the methods")
    presets = sub.add_parser("presets", help="list the presets; with --data, the auto recipe for that data",
                             description="List the named presets. With --data (and --device), print the recipe "
                                         "that `fit` would choose for that data when no preset is named.")
    add_data_args(presets)
    presets.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    presets.add_argument("-k", "--clusters", type=int, default=None,
                         help="number of clusters K (default: one per class folder, else 10)")
    add_pretrained_arg(presets)
    presets.description += f" --data: {DATA_HELP}."


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad usage is one line on stderr (and exit code 2), pointing at ``--help`` instead of printing usage."""

    def error(self, message: str) -> None:
        print(f"contraclust: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="contraclust", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Contrastive deep clustering of images or feature vectors.\n\nmethods:\n"
        + "\n".join(f"  {name:5s} {summary}" for name, summary in SUMMARIES.items()),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_fit_parser(sub)
    add_embed_parser(sub)
    add_predict_parsers(sub)
    add_report_parser(sub)
    add_pack_parser(sub)
    add_reproduce_parser(sub)
    add_suggest_k_parser(sub)
    add_views_parser(sub)
    add_listing_parsers(sub)
    return parser
