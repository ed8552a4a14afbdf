"""``reproduce``: train (or evaluate) a method on a paper benchmark under its paper preset and put the
measured NMI/ACC/ARI beside the paper's, with epochs, images/s and wall time.

Both the last-epoch and the best-epoch numbers are reported (best by ACC over the evaluated epochs,
i.e. every ``train.eval_every`` epochs and the last), with which of them the paper used where known.
"""
from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

from contraclust.console import say
from contraclust.data.benchmarks import BENCHMARKS, read_benchmark
from contraclust.errors import ConfigError
from contraclust.metrics import evaluate_clustering
from contraclust.prepare import prepare
from contraclust.presets import PRESETS
from contraclust.request import FitRequest, Reading
from contraclust.run import Run
from contraclust.reproduce.tables import METRICS, paper_tables
from contraclust.training.checkpoint import load_checkpoint
from contraclust.training.inference import predict_checkpoint

RUN_FOLDER = "run"


def paper_preset(method: str, dataset: str) -> str:
    """The preset that holds ``method``'s paper settings on ``dataset``."""
    name = f"{method}-paper-{dataset}"
    if name not in PRESETS:
        raise ConfigError(f"there is no paper preset for {method} on {dataset} ({name}); give one with --preset "
                          f"(see contraclust presets)")
    return name


def reproduce(method: str, dataset: str, data_path: str | Path, out_dir: str | Path, *, preset: str | None = None,
              epochs: int | None = None, budget: str | float | None = None, limit: int | None = None,
              checkpoint: str | Path | None = None, device: str | None = None, seed: int | None = None,
              resume: bool = False, overrides: list[str] | None = None, progress: bool = True,
              started_at: float | None = None) -> dict[str, Any]:
    """Run one reproduction into ``out_dir`` (the training run goes to ``out_dir/run``) and return its
    report, also written as ``reproduce.json`` and ``reproduce.md``."""
    started_at = time.monotonic() if started_at is None else started_at
    if dataset not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {dataset!r}; choose one of {', '.join(BENCHMARKS)}")
    benchmark = BENCHMARKS[dataset]
    loaded = []

    def read(size: int | None):
        loaded.append(read_benchmark(dataset, data_path, size=size, limit=limit, progress=progress))
        return loaded[-1].samples

    out_dir = Path(out_dir)
    prepared = prepare(FitRequest(
        data=str(data_path), n_clusters=benchmark.n_clusters, method=method,
        preset=preset or paper_preset(method, dataset), budget=budget, epochs=epochs, seed=seed,
        overrides=list(overrides or []), reading=Reading(progress=progress), out=out_dir / RUN_FOLDER,
        report=False, device=device, started_at=started_at, name_a_folder=False, read=read))
    config, data, run_device, extra = prepared.config, prepared.data, prepared.device, loaded[-1].instance_only
    report: dict[str, Any] = {
        "method": method, "dataset": dataset, "preset": config.preset, "protocol": benchmark.protocol,
        "n_samples": len(data), "limit": limit, "device": str(run_device),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "unlabelled_instance_images": len(extra) if extra is not None else 0,
    }
    if checkpoint is not None:
        report["measured"] = _evaluate_checkpoint(checkpoint, data, device)
    else:
        folder = prepared.out
        if resume:
            run = Run.resume(folder, lambda stored: data, requested=config, device=run_device, started_at=started_at,
                             instance_data=extra)
        else:
            run = Run.start(config, data, folder, device=run_device, started_at=started_at, instance_data=extra)
        say(f"reproduce: {method} on {dataset} ({len(data)} images{', stratified --limit' if limit else ''}), "
            f"preset {config.preset}, " + (f"{config.train.epochs} epochs" if not config.train.budget_seconds
                                           else f"budget {config.train.budget_seconds:.0f} s"))
        result = run.fit()
        report["measured"] = _measured(run.trainer, result)
    report["wall_seconds"] = round(time.monotonic() - started_at, 1)
    report["papers"] = _paper_rows(method, dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "reproduce.json").write_text(json.dumps(report, indent=2))
    (out_dir / "reproduce.md").write_text(format_report(report) + "\n")
    return report


def _measured(trainer, result) -> dict[str, Any]:
    """Last and best (by ACC) evaluated epochs, epochs run and training images per second."""
    evaluated = [row for row in result.history if "acc" in row]
    last = {"epoch": result.epochs, **{k: result.metrics.get(k) for k in METRICS}}
    best_row = max(evaluated, key=lambda row: row["acc"], default=None)
    best = {"epoch": best_row["epoch"], **{k: best_row[k] for k in METRICS}} if best_row else last
    if best_row and last["acc"] is not None and last["acc"] > best["acc"]:
        best = last
    rate = trainer.images_trained / trainer.train_seconds if trainer.train_seconds else 0.0
    return {"last": last, "best": best, "epochs": result.epochs, "evaluated_epochs": [r["epoch"] for r in evaluated],
            "images_per_second": round(rate, 1), "train_seconds": round(trainer.train_seconds, 1),
            "run_wall_seconds": round(result.wall_seconds, 1)}


def _evaluate_checkpoint(checkpoint: str | Path, data, device) -> dict[str, Any]:
    """A trained model scored on the benchmark: that one epoch is both last and best."""
    epoch = int(load_checkpoint(checkpoint).get("epoch", 0))
    began = time.perf_counter()
    labels, _, _ = predict_checkpoint(checkpoint, data, device)
    scores = {"epoch": epoch, **evaluate_clustering(data.labels, labels)}
    return {"last": scores, "best": scores, "epochs": epoch, "evaluated_epochs": [epoch], "checkpoint": str(checkpoint),
            "images_per_second": round(len(data) / (time.perf_counter() - began), 1), "train_seconds": 0.0}


def _paper_rows(method: str, dataset: str) -> list[dict[str, Any]]:
    """The method's paper row, and TCL's for comparison, where the tables have the data set."""
    rows = []
    for name in dict.fromkeys([method, "tcl"]):
        table = paper_tables().get(name)
        if table is None or dataset not in table.results:
            continue
        rows.append({"method": name, "paper": table.paper, "certainty": table.certainty, "epochs": table.epochs,
                     "epoch_reported": table.epoch_reported, "epoch_note": table.epoch_note,
                     **table.results[dataset]})
    return rows


def _cell(value: float | None) -> str:
    return "?" if value is None else f"{value:.3f}"


def format_report(report: dict[str, Any]) -> str:
    """The side-by-side table (Markdown; also what the command prints) and the lines that explain it."""
    measured = report["measured"]
    lines = [f"# {report['method']} on {report['dataset']}: paper against measured", "",
             "| row | epochs | NMI | ACC | ARI |", "|---|---|---|---|---|"]
    for row in report["papers"]:
        label = f"paper: {row['method'].upper()}" + (" (for comparison)" if row["method"] != report["method"] else "")
        epoch = "epoch not stated" if row["epoch_reported"] == "unknown" else f"{row['epoch_reported']} epoch"
        lines.append(f"| {label}, {epoch} | {row['epochs']} | "
                     + " | ".join(_cell(row[k]) for k in METRICS) + " |")
    for which in ("last", "best"):
        scores = measured[which]
        lines.append(f"| measured, {which} epoch (epoch {scores['epoch']}) | {measured['epochs']} | "
                     + " | ".join(_cell(scores.get(k)) for k in METRICS) + " |")
    if not report["papers"]:
        lines.append(f"| paper | no published {report['method'].upper()} result on {report['dataset']} | | | |")
    lines.append("")
    limit = f", a stratified --limit of {report['limit']}" if report["limit"] else ""
    lines.append(f"- data: {report['n_samples']} images{limit}; protocol: {report['protocol']}"
                 + (f"; {report['unlabelled_instance_images']} unlabelled images for the instance loss"
                    if report["unlabelled_instance_images"] else ""))
    lines.append(f"- preset {report['preset']} on {report['device']}; training {measured['images_per_second']:g} "
                 f"images/s over {measured['train_seconds']:g} s; wall time {report['wall_seconds']:g} s in all")
    lines.append("- best = highest ACC over the evaluated epochs " + ", ".join(map(str, measured["evaluated_epochs"])))
    for row in report["papers"]:
        note = f" ({row['epoch_note']})" if row["epoch_note"] else ""
        lines.append(f"- {row['method'].upper()}: {row['paper']}; {row['certainty']}. Epoch reported: "
                     f"{row['epoch_reported']}{note}")
    return "\n".join(lines)
