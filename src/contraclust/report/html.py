"""The run report: one self-contained ``report.html`` beside a ``report/`` folder of PNG files.

It opens from disk (no server, no CDN, no network). Per cluster: size, mean confidence, the most and
the least confident samples (thumbnails of the un-augmented images, or of the image files that a
frozen backbone embedded; for other vectors their indices or ids), and with labels its purity and majority class. For the run: training curves against epoch
and wall time, the Hungarian-matched confusion matrix, cluster sizes, the confidence histogram and a
2-D map of the embeddings (t-SNE, or UMAP when installed) whose points name their sample on hover.
"""
from __future__ import annotations

import html
import shutil
from pathlib import Path

import numpy as np
import torch

from contraclust.config import read_config_file
from contraclust.data import Samples, load_data
from contraclust.data.images import IMAGE_SUFFIXES, decode_image
from contraclust.errors import DataError
from contraclust.files import removed_if_unfinished, write_whole
from contraclust.metrics import degenerate_partition, evaluate_clustering
from contraclust.models.catalogue import fetch_hint
from contraclust.readout import MAP_POINTS, Readout, load_readout
from contraclust.report import figures
from contraclust.report.plots import plot_training_log
from contraclust.report.sizing import PAGE_SECONDS, ReportClock, fitted_map, smallest_report_seconds

THUMBNAIL_SIDE = 64
MAP_SIZE = (640, 480)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1200px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; } h3 { font-size: 15px; margin: 18px 0 6px; }
.hint { background: #fff4d6; border-left: 4px solid #e0a800; padding: 8px 12px; }
.figures { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; }
.figures img { max-width: 49%; border: 1px solid #ddd; }
.gallery { display: flex; flex-wrap: wrap; gap: 4px; margin: 2px 0 8px; }
.gallery figure { margin: 0; text-align: center; font-size: 10px; color: #555; }
.gallery img { width: 64px; height: 64px; image-rendering: pixelated; border: 1px solid #ccc; display: block; }
.chip { font: 11px monospace; background: #f2f2f2; padding: 2px 4px; border-radius: 3px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 4px; }
.cluster { border-top: 1px solid #e5e5e5; padding-top: 4px; }
#broken { background: #fdd; padding: 8px; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: right; }
"""

# Marks the page with how many images loaded, and tells the reader when some did not.
CHECK_IMAGES = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (img) { return !(img.complete && img.naturalWidth > 0); });
  document.documentElement.setAttribute("data-images", String(images.length));
  document.documentElement.setAttribute("data-broken-images", String(broken.length));
  if (broken.length) {
    var note = document.getElementById("broken");
    note.textContent = broken.length + " of " + images.length +
      " images could not be loaded: keep the report/ folder beside report.html.";
    note.hidden = false;
  }
});
"""


LOW_CONFIDENCE = 0.75  # a from-scratch photo run whose mean confidence is below this gets the backbone hint


def report_seconds(n_samples: int, map_points: int = 1500, budget_seconds: float | None = None) -> float:
    """What ``fit`` keeps of a time budget for the report: about its time on a 2-core CPU (measured on
    MNIST-5k after the run's curves.png: 1.2 s for loading scikit-learn's manifold module, 3.3 s for t-SNE
    of 1,500 points, 0.4 s to embed them, 1 s for the figures, galleries and page; the final read-out is
    reused), at most 10% of a short budget: the report then measures and shrinks to what is left
    (``report/sizing.py``)."""
    full = 1.5 + 0.003 * min(n_samples, map_points) + 0.0002 * n_samples
    return full if budget_seconds is None else min(full, max(smallest_report_seconds(), 0.1 * budget_seconds))


def write_report(run_dir: str | Path, data: Samples | None = None, gallery: int = 12,
                 map_points: int = MAP_POINTS, *, readout: Readout | None = None,
                 seconds: float | None = None) -> Path | None:
    """Write ``RUN_DIR/report.html`` and ``RUN_DIR/report/`` from what the run wrote: its config, its log and
    its read-out (``readout.npz``: probabilities, and the map's embeddings), shown on ``data`` (default: the
    run's own data) for the thumbnails. ``readout``: another read-out of ``data`` (the report of a run's
    model on other data, made by the face that asked). Returns the HTML file's path. ``seconds``: the time
    the report may take: its map is sampled smaller and its galleries cut to fit, said at its top; None
    (nothing written) when even the smallest report does not fit. The model is never loaded here."""
    clock = ReportClock(seconds)
    if clock.left() < smallest_report_seconds():
        return None
    run_dir = Path(run_dir)
    config = read_config_file(run_dir / "config.json", "the report cannot be written")
    readout = readout if readout is not None else load_readout(run_dir)
    if data is None:
        data = load_data(config.data, max_size=config.augment.size, progress=False)
    if len(readout.probabilities) != len(data):
        raise DataError(f"the read-out of {run_dir} holds {len(readout.probabilities)} samples and the data "
                        f"{len(data)}: `contraclust report {run_dir} --data DATA` reads the model on other data")
    folder, out = run_dir / "report", run_dir / "report.html"
    with removed_if_unfinished(folder, out):  # a full disk leaves no half report behind
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "samples").mkdir(parents=True)
        write_whole(out, _page(run_dir, config, data, folder, readout, gallery, min(map_points, len(readout.rows)),
                               clock))
    return out


def _page(run_dir: Path, config, data: Samples, folder: Path, readout: Readout, gallery: int, map_points: int,
          clock: ReportClock) -> str:
    """The report's HTML, its figures, map and thumbnails written into ``folder`` on the way: the figures
    first, then the map, then the galleries, each fitted to the time left on ``clock``."""
    clusters, k = readout.clusters, readout.probabilities.shape[1]
    confidence = readout.probabilities.max(axis=1)
    labels = data.labels
    class_names = list(getattr(data, "class_names", []) or [])
    paths = list(getattr(data, "paths", None) or getattr(data, "ids", None) or [])  # image files, or vectors' ids

    made_figures = _figures(run_dir, folder, clusters, confidence, labels, k, class_names)
    coordinates, rows, how = fitted_map(readout.embed, len(clusters), map_points, clock, figures.project_2d,
                                        reserve=PAGE_SECONDS + 0.1 * k)
    figures.map_figure(coordinates, clusters[rows], how, folder / "map.png")
    captions = [_caption(i, int(clusters[i]), labels, class_names, paths) for i in rows]
    gallery_of = _clusters(data, folder, clusters, confidence, labels, class_names, paths, k, gallery, clock)
    cut = _cut_note(len(rows), min(map_points, len(clusters)), gallery_of, run_dir)
    sections = [_degenerate_note(clusters, k), cut, _backbone_hint(config, data, confidence),
                _summary(run_dir, config, data, clusters, labels), gallery_of, made_figures,
                f"<h2>Embeddings ({how} of {len(rows)} samples; hover a point to name it)</h2>"
                + _svg_map(coordinates, clusters[rows], captions, k)
                + '<p><a href="report/map.png">map.png</a> (the same map as an image)</p>']
    title = f"contraclust report: {run_dir.name}"
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
            f'<p id="broken" hidden></p>\n' + "\n".join(sections) + f"\n<script>{CHECK_IMAGES}</script>\n</body></html>\n")


def _cut_note(mapped: int, wanted: int, galleries: str, run_dir: Path) -> str:
    """At the top of a report cut to fit its time: what was left out."""
    cut = []
    if mapped < wanted:
        cut.append(f"the map shows {mapped} of the {wanted} samples it would")
    if CUT_MARK in galleries:
        cut.append("some galleries have fewer thumbnails")
    if not cut:
        return ""
    return (f'<p class="hint" id="cut">Written within the run\'s time budget: {"; ".join(cut)}. '
            f"<code>contraclust report {html.escape(str(run_dir))}</code> writes it whole.</p>")


def _degenerate_note(clusters: np.ndarray, k: int) -> str:
    """At the top of the report of a degenerate clustering (empty clusters, one cluster holding nearly all):
    the line ``fit`` prints, with what to do."""
    warning = degenerate_partition(clusters, k)
    return "" if warning is None else f'<p class="hint" id="degenerate">{html.escape(warning[0].upper() + warning[1:])}</p>'


def _backbone_hint(config, data: Samples, confidence: np.ndarray) -> str:
    """At the top of a from-scratch run on colour photos that ended unsure (mean confidence below
    ``LOW_CONFIDENCE``): how to fetch a pretrained backbone, the line ``fit`` prints."""
    if config.frozen_backbone or not data.is_image or data.sample_shape[0] != 3 or confidence.mean() >= LOW_CONFIDENCE:
        return ""
    return (f'<p class="hint">The mean confidence is {confidence.mean():.2f}: these clusters are not sure of '
            f"themselves. {html.escape(fetch_hint(config.data, config.n_clusters).removeprefix('hint: '))}</p>")


def _summary(run_dir: Path, config, data: Samples, clusters: np.ndarray, labels) -> str:
    facts = [("method", config.method), ("preset", config.preset), ("data", data.name),
             ("samples", str(len(data))), ("clusters (K)", str(config.n_clusters)),
             ("sample shape", "x".join(map(str, data.sample_shape)))]
    if config.frozen_backbone:
        facts.insert(3, ("frozen backbone", config.frozen_backbone))
    if labels is not None:
        facts += [(name.upper(), f"{value:.4f}") for name, value in evaluate_clustering(labels, clusters).items()]
    cells = "".join(f"<tr><th>{html.escape(a)}</th><td>{html.escape(b)}</td></tr>" for a, b in facts)
    return f"<table>{cells}</table>"


def _figures(run_dir: Path, folder: Path, clusters, confidence, labels, k: int, class_names: list[str]) -> str:
    made = []
    log = run_dir / "log.csv"
    if log.exists() and log.stat().st_size:
        for x, name in (("epoch", "curves_epoch.png"), ("wall_seconds", "curves_time.png")):
            if plot_training_log(log, folder / name, x=x):
                made.append(name)
    if labels is not None:
        figures.confusion_figure(labels, clusters, k, class_names, folder / "confusion.png")
        made.append("confusion.png")
    figures.sizes_figure(clusters, k, folder / "sizes.png")
    figures.confidence_figure(confidence, folder / "confidence.png")
    made += ["sizes.png", "confidence.png"]
    images = "".join(f'<img src="report/{name}" alt="{name}">' for name in made)
    return f'<h2>Training and clusters</h2><div class="figures">{images}</div>'


def _caption(index: int, cluster: int, labels, class_names: list[str], paths: list[str]) -> str:
    parts = [f"#{index}", f"cluster {cluster}"]
    if labels is not None:
        parts.append(f"class {_class_name(labels[index], class_names)}")
    if paths:
        parts.append(paths[index])
    return " · ".join(parts)


def _class_name(label, class_names: list[str]) -> str:
    return class_names[int(label)] if 0 <= int(label) < len(class_names) else str(int(label))


def _svg_map(coordinates: np.ndarray, clusters: np.ndarray, captions: list[str], k: int) -> str:
    width, height = MAP_SIZE
    low, high = coordinates.min(axis=0), coordinates.max(axis=0)
    scaled = (coordinates - low) / np.where(high > low, high - low, 1.0)
    xs, ys = 10 + scaled[:, 0] * (width - 20), 10 + (1 - scaled[:, 1]) * (height - 20)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{figures.cluster_colour(int(c))}">'
                   f"<title>{html.escape(text)}</title></circle>"
                   for x, y, c, text in zip(xs, ys, clusters, captions))
    legend = " ".join(f'<span><span class="swatch" style="background:{figures.cluster_colour(c)}"></span>{c}</span>'
                      for c in range(k))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'style="border:1px solid #ddd">{dots}</svg><p>clusters: {legend}</p>')


CUT_MARK = "<!-- cut to the time left -->"


def _clusters(data: Samples, folder: Path, clusters, confidence, labels, class_names, paths, k: int,
              gallery: int, clock: ReportClock) -> str:
    parts = ["<h2>Clusters</h2>"]
    for cluster in range(k):
        members = np.flatnonzero(clusters == cluster)
        head = (f'<h3><span class="swatch" style="background:{figures.cluster_colour(cluster)}"></span>'
                f"cluster {cluster}: {len(members)} samples")
        if len(members) == 0:
            parts.append(f'<div class="cluster">{head} (empty)</h3></div>')
            continue
        head += f", mean confidence {confidence[members].mean():.3f}"
        if labels is not None:
            values, counts = np.unique(labels[members], return_counts=True)
            majority = values[counts.argmax()]
            head += (f", purity {counts.max() / len(members):.3f} "
                     f"(majority class {html.escape(_class_name(majority, class_names))})")
        ranked = members[np.argsort(-confidence[members], kind="stable")]
        most, least = ranked[:gallery], ranked[::-1][:gallery]
        parts.append(f'<div class="cluster">{head}</h3>'
                     f"<div>most confident</div>"
                     f"{_gallery(data, folder, most, confidence, labels, class_names, paths, clock)}"
                     f"<div>least confident</div>"
                     f"{_gallery(data, folder, least, confidence, labels, class_names, paths, clock)}"
                     "</div>")
    return "\n".join(parts)


def _gallery(data: Samples, folder: Path, rows: np.ndarray, confidence, labels, class_names, paths,
             clock: ReportClock) -> str:
    """Thumbnails of ``rows`` (ids for vectors), until the time left is the page's own."""
    items = []
    for i in rows:
        if clock.left() < PAGE_SECONDS:
            items.append(CUT_MARK)
            break
        text = f"{confidence[i]:.2f}" + (f" · {_class_name(labels[i], class_names)}" if labels is not None else "")
        name = html.escape(paths[i] if paths else f"#{i}")
        file = folder / "samples" / f"{i}.png"
        picture = None if file.exists() else _picture(data, i, paths)
        if picture is not None:
            picture.save(file)
        if file.exists():
            items.append(f'<figure><img src="report/samples/{i}.png" alt="{name}" title="{name}">'
                         f"<figcaption>{html.escape(text)}</figcaption></figure>")
        else:
            items.append(f'<span class="chip" title="{html.escape(text)}">{name}</span>')
    return f'<div class="gallery">{"".join(items)}</div>'


def _picture(data: Samples, index: int, paths: list[str]):
    """Sample ``index`` as a thumbnail: the image itself, or for vectors embedded from image files (a frozen
    pretrained backbone) the file read small; None for other vectors, or a file no longer readable."""
    if data.is_image:
        return _thumbnail(data.images[index])
    path = Path(paths[index]) if paths else None
    if path is None or path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
        return None
    from PIL import Image

    try:
        return Image.fromarray(decode_image(path, "RGB", THUMBNAIL_SIDE, centre_crop=True)[0])
    except DataError:
        return None


def _thumbnail(image: torch.Tensor):
    """A (C, H, W) uint8 image as a PIL image whose larger side is ``THUMBNAIL_SIDE`` (pixels kept sharp)."""
    from PIL import Image

    array = image.cpu().numpy()
    picture = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
    scale = THUMBNAIL_SIDE / max(picture.size)
    size = (max(1, round(picture.size[0] * scale)), max(1, round(picture.size[1] * scale)))
    return picture.resize(size, Image.NEAREST if scale > 1 else Image.BILINEAR)
