"""The benchmark scripts run at toy sizes on the CPU and print their figures."""
import os
import re
import subprocess
import sys
import tarfile

import pytest

from helpers import ROOT, wheel_weights


def run_script(name, *args, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], capture_output=True, text=True,
                          env=env, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


NUMBER = r"-?\d+(?:\.\d+)?"


def row_numbers(out, label):
    """The numbers in the cells after ``label`` (the start of a table row, ``| `` left out; a label that
    ends inside a cell runs to that cell's end) of the row that begins with it; "a ± b" gives two."""
    for line in out.splitlines():
        if line.startswith(f"| {label}"):
            rest = line[len(label) + 2:]
            rest = rest if label.endswith("|") else rest[rest.index("|") + 1:]
            return [float(x) for x in re.findall(NUMBER, rest)]
    raise AssertionError(f"no row {label!r} in:\n{out}")


def assert_scores(numbers, count=3, spread=True):
    """NMI, ACC, ARI (each with its ± spread when ``spread``) lead the row, each a score in [-1, 1]."""
    scores = numbers[: count * (2 if spread else 1)]
    assert len(scores) == count * (2 if spread else 1), numbers
    assert all(-1 <= v <= 1 for v in scores), numbers


def test_default_job_smoke():
    out = run_script("default_job.py", "--seeds", "0", "--budget", "6s", "--set", "model.width=8")
    fit = row_numbers(out, "contraclust fit (")
    assert_scores(fit)
    assert fit[-1] > 50  # peak host MB
    assert_scores(row_numbers(out, "k-means on raw pixels"))


def test_compare_methods_smoke():
    out = run_script("compare_methods.py", "--data", "digits", "--seeds", "0", "--epochs", "2", "--c3-epochs", "1",
                     "--methods", "c3", "clc", "--set", "model.width=8", "--set", "train.batch_size=256")
    for name in ("C3 (CC stage + C3)", "&nbsp;&nbsp;CC stage of C3", "CLC", "k-means"):
        numbers = row_numbers(out, name)
        assert_scores(numbers)
        if name != "k-means":
            assert numbers[6] > 0 and numbers[8] > 50  # wall s (± its spread), peak host MB


def test_stage_curves_smoke():
    out = run_script("stage_curves.py", "--seeds", "0", "--cc-epochs", "2", "--c3-epochs", "1", "--rows", "cc:2",
                     "c3:1", "--parallel", "1", "--set", "model.width=8", "--set", "method.cluster_heads=2")
    for stage, epoch in (("cc", 2), ("c3", 1)):
        numbers = row_numbers(out, f"{stage} | {epoch} |")  # NMI, ACC of seed 0, their means, wall s
        assert len(numbers) == 5 and numbers[:2] == numbers[2:4] and numbers[4] > 0, numbers
        assert_scores(numbers[:2], count=2, spread=False)
    assert "| cc | 1 |" not in out  # only the rows asked for


def test_cpu_step_smoke():
    out = run_script("cpu_step.py", "--steps", "2", "--warmup", "1", "--width", "8")
    before = row_numbers(out, "before: fp32, NCHW")
    assert before[0] >= 1 and before[1] > 0 and before[-1] == 1.0  # threads, steps/s, the 1.00x base
    assert row_numbers(out, "auto (what fit runs")[-1] > 0


def test_auto_folders_smoke(tmp_path):
    out = run_script("auto_folders.py", "--sets", "digits", "npy", "--limit", "200", "--budget", "4s",
                     "--workdir", str(tmp_path))
    for label in ("digits | 200 | 1x28x28 | 10 |", "npy | 200 | 3x32x32 | 5 |"):
        numbers = row_numbers(out, label)
        assert_scores(numbers, spread=False) and numbers[3] > 0, numbers  # fit NMI/ACC/ARI, wall s
        assert_scores(numbers[4:], count=2, spread=False)  # k-means NMI, ACC


def test_photo_recipe_smoke(tmp_path):
    out = run_script("photo_recipe.py", "--arms", "default", "old-default", "--seeds", "0", "--budget", "6s",
                     "--per-class", "20", "--cifar", str(shared_cifar10()), "--workdir", str(tmp_path))
    for arm in ("default", "old-default"):
        numbers = row_numbers(out, f"{arm} | 6s | 1 |")
        assert_scores(numbers) and numbers[6] > 0 and numbers[7] >= 1, numbers  # wall s, epochs
    assert re.search(r"default 6s seed 0: NMI .* epochs; NMI by time: \d+s", out)


def test_vectors_smoke():
    out = run_script("vectors.py", "--data", "digits", "--seeds", "0", "--budget", "3s", "--methods", "cc")
    assert "budget 3s per run" in out and "| scikit-learn digits (1797 x 64) | NMI |" in out
    cc = row_numbers(out, "CC |")
    assert_scores(cc) and 0 < cc[6] < 30, cc  # wall s of a 3 s budget
    for baseline in ("k-means", "spectral"):
        assert_scores(row_numbers(out, baseline))


def test_long_tailed_smoke():
    out = run_script("long_tailed.py", "--ratios", "100", "--seeds", "0", "--epochs", "1", "--set", "model.width=8",
                     "--set", "model.head_hidden=32")
    assert "ratio 100: " in out
    for label in ("cluster-prior uniform |", "cluster-prior none", "cluster-prior estimated",
                  "cluster-prior uniform, weight 0.2", "k-means on raw pixels"):
        numbers = row_numbers(out, label)
        assert_scores(numbers)


def test_activation_memory_smoke():
    out = run_script("activation_memory.py", "--preset", "cifar10-fast", "--images", "2")
    numbers = row_numbers(out, "cifar10-fast | resnet18 (cifar) | 32 | bf16 |")
    assert numbers[0] > 0 and numbers[1] > 0 and numbers[2] == 512 and numbers[4] > 0, numbers


def test_suggest_k_table_smoke():
    out = run_script("suggest_k.py", "--only", "digits", "--budget", "8s", "--range", "8:12")
    numbers = row_numbers(out, "`contraclust suggest-k --data digits --range 8:12 --budget 8s`")
    assert 1 <= numbers[0] <= 5 and len(numbers) >= 9, numbers  # the rank of K=10 among 8..12, scores, signals


def test_quality_floors_smoke():
    out = run_script("quality_floors.py", "--digits-seeds", "0", "--mnist-seeds")
    nmi = re.search(r"digits vectors, 60 epochs: NMI ([0-9.]+) \(mean ([0-9.]+), sd ([0-9.]+), min ([0-9.]+)\)", out)
    assert nmi and 0 < float(nmi[1]) == float(nmi[2]) <= 1 and float(nmi[3]) == 0.0, out


def test_view_speed_smoke():
    out = run_script("view_speed.py", "--repeats", "1", "--batch-32", "8", "--batch-224", "2")
    for size, batch in ((32, 8), (224, 2)):
        numbers = row_numbers(out, f"{size} | {batch} |")
        assert len(numbers) == 6 and all(v > 0 for v in numbers), numbers  # ms before/after, speed-ups


ARMS = ("batched", "per-sample", "pil-ops", "python-params")


def test_view_parity_smoke():
    out = run_script("view_parity.py", "--data", str(shared_cifar10()), "--limit", "200", "--epochs", "1",
                     "--seeds", "0", "--set", "model.width=8", "--arms", *ARMS, "--compare-ops", "64")
    for arm in (*ARMS, "k-means on raw pixels"):
        assert_scores(row_numbers(out, f"{arm} |"))
    gap = re.search(rf"same parameters, 64 views: \|batched - PIL\| mean ({NUMBER}), 99th percentile ({NUMBER})", out)
    assert 0 < float(gap[1]) < 0.01 and float(gap[2]) < 0.05, out  # within a few 8-bit steps


def test_scaling_smoke(tmp_path):
    out = run_script("scaling.py", "--vectors", "1500", "3000", "--methods", "cc", "--k-sweep", "--images", "200",
                     "--streamed", "200", "--whole", "--cifar", str(shared_cifar10()), "--work", str(tmp_path), "--plot",
                     str(tmp_path / "scaling.png"))
    for n in ("1,500", "3,000"):
        numbers = row_numbers(out, f"vectors 64-D | cc | 10 | {n} |")
        # read, neighbours, setup, epoch, read-out, evaluation seconds; peak anonymous and resident MB; NMI;
        # the neighbours' recall (1: exact) and how many share the sample's mixture component
        assert len(numbers) == 11 and all(v >= 0 for v in numbers) and numbers[-3:-1] == [numbers[-3], 1.0], numbers
        assert numbers[3] > 0 and numbers[6] > 50 and 0.5 < numbers[-1] <= 1
    assert len(row_numbers(out, "CIFAR-10 pack | cc | 10 | 200 |")) == 9  # the pack's seconds, no neighbours
    assert len(row_numbers(out, "CIFAR-10 pack, streamed | cc | 10 | 200 |")) == 8
    assert len(row_numbers(out, "vectors cc K=10 |")) >= 3  # the fitted exponents of the steps that took time
    assert (tmp_path / "scaling.png").stat().st_size > 1000


def test_clc_projection_smoke():
    out = run_script("clc_projection.py", "--gpus", "1", "8")
    assert float(re.search(rf"counted: ({NUMBER}) GFLOPs per image", out)[1]) > 10
    rates = {}
    for gpus in (1, 8):
        cells = [c.strip() for c in next(line for line in out.splitlines() if line.startswith(f"| {gpus} |")).split("|")]
        rates[gpus] = float(cells[9].replace(",", ""))  # images/s
    assert 0 < rates[1] < rates[8] <= 8 * rates[1]


def only_python3_on_path(tmp_path):
    """An environment whose PATH has ``python3`` (this interpreter) and a ``python`` that fails loudly, as on
    the lent GPU machine, where only python3 exists."""
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (shims / "python").write_text('#!/bin/sh\necho "a bare python was called: $*" >&2\nexit 97\n')
    for shim in shims.iterdir():
        shim.chmod(0o755)
    return {"HOME": os.environ.get("HOME", "/root"), "PATH": f"{shims}:/usr/bin:/bin",
            "PYTHONPATH": str(ROOT / "src"), "CAMPAIGN_TOY": "1", "CAMPAIGN_TMP": str(tmp_path / "work")}


def assert_what_comes_back_from_a_device(out):
    """The device returns at most 8 files of OUT, none deeper than OUT/a/b/file, named in [A-Za-z0-9._-]."""
    files = [p for p in out.rglob("*") if p.is_file()]
    assert 0 < len(files) <= 8, files
    for file in files:
        relative = file.relative_to(out)
        assert len(relative.parts) <= 3 and all(re.fullmatch(r"[A-Za-z0-9._-]+", part) for part in relative.parts)
        assert file.stat().st_size < 16 * 2 ** 20


def shared_cifar10():
    data = ROOT.parent / "shared" / "datasets" / "cifar10"
    if not data.is_dir():
        pytest.skip("../shared/datasets/cifar10 not present")
    return data


def test_gpu_campaign_runs_every_part_at_toy_size_on_the_cpu(tmp_path):
    """Also the toy runs of throughput.py and time_to_quality.py, which the campaign calls. Only python3 is
    on PATH, and OUT holds what a device can give back: summary.md with every part's figure, and the logs."""
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_campaign.sh"), str(shared_cifar10()), str(out)],
                          capture_output=True, text=True, env=only_python3_on_path(tmp_path), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_what_comes_back_from_a_device(out)
    assert sorted(p.name for p in out.iterdir()) == ["logs.tar.gz", "summary.md"]
    summary = (out / "summary.md").read_text()
    assert "failed" not in summary and "bare python" not in summary
    for part in ("throughput-paper", "throughput-fast", "time-to-quality", "reproduce-cc", "reproduce-cc-self-label"):
        assert f"## {part}" in summary, part
    ratios = re.findall(r"ratio fast / reference: ([0-9.]+)x", summary)
    assert len(ratios) == 2 and all(float(r) > 0 for r in ratios)
    rows = re.findall(r"^\| (\d+) \| (\d+) \| ([0-9.]+) \| ([0-9.]+) \| (-?[0-9.]+) \|$", summary, re.M)
    assert rows and all(0 <= float(nmi) <= 1 for _, _, nmi, _, _ in rows)  # the time-to-quality curve
    assert "| paper: CC, last epoch | 1000 | 0.705 | 0.790 | 0.637 |" in summary
    assert re.search(r"\| measured, last epoch \(epoch 1\) \| 1 \| [0-9.]+ \| [0-9.]+ \| -?[0-9.]+ \|", summary)
    with tarfile.open(out / "logs.tar.gz") as logs:
        assert {f"./{part}.{kind}" for part in ("throughput-paper", "reproduce-cc") for kind in ("txt", "log")} <= set(
            logs.getnames())


def test_streaming_campaign_packs_and_times_both_paths_at_toy_size_on_the_cpu(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "streaming_campaign.sh"), str(shared_cifar10()),
                           str(out)], capture_output=True, text=True, env=only_python3_on_path(tmp_path), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_what_comes_back_from_a_device(out)
    summary = (out / "summary.md").read_text()
    for size in (64, 224):
        assert f"packed 64 images (2 classes) at {size} px" in summary
    assert summary.count("streaming path (host memory") == 2
    ratios = re.findall(r"ratio streaming / resident: ([0-9.]+)x", summary)
    assert len(ratios) == 2 and all(float(r) > 0 for r in ratios)
    assert "failed" not in summary


def test_photo_reading_smoke():
    out = run_script("photo_reading.py", "--photos", "6", "--side", "320", "--sizes", "32", "224")
    scratch = row_numbers(out, "32 px, from scratch |")
    assert len(scratch) == 8 and min(scratch) >= 0 and scratch[0] > 0 and scratch[1] > 0, scratch
    assert scratch[7] < 8, scratch  # the reduced decode's pixels stay near the whole decode's
    backbone = row_numbers(out, "224 px, a backbone's centre square |")
    assert len(backbone) == 7 and backbone[5:] == [230.4, 150.5], backbone  # KB held: the whole photo, then 224 x 224


def test_threads_smoke():
    out = run_script("threads.py", "--busy", "0", "--steps", "8")
    for setting in ("0 | default", "0 | 1 thread", "0 | chosen"):
        threads, rate, wall, ratio = row_numbers(out, setting)
        assert threads >= 1 and rate > 0 and wall > 0 and ratio > 0


def test_frozen_features_smoke():
    weights = wheel_weights()
    out = run_script("frozen_features.py", "--weights", str(weights), "--sets", "digits", "--seeds", "0", "--budget",
                     "4s")
    assert_scores(row_numbers(out, "digits (pixels) | 1797 x 64 | contraclust"))
    assert_scores(row_numbers(out, "digits (pixels) | 1797 x 64 | spectral"))
    base, ours, difference = row_numbers(out, "mean over the sets")
    assert abs(ours - base - difference) < 2e-3
    purity = row_numbers(run_script("frozen_features.py", "--weights", str(weights), "--sets", "digits",
                                    "--neighbours"), "digits |")
    assert len(purity) == 3 and all(0.9 < share <= 1 for share in purity), purity


def test_photos_frozen_smoke(tmp_path):
    out = run_script("photos_frozen.py", "--weights", str(wheel_weights()), "--per-class", "6", "--budget", "15s",
                     "--workdir", str(tmp_path))
    assert "backbone: mobilenet-v2" in out and "30 photos, K=5" in out
    assert_scores(row_numbers(out, "contraclust fit (read, embed"), spread=False)
    assert_scores(row_numbers(out, "k-means (n_init=10) on the same features"), spread=False)
