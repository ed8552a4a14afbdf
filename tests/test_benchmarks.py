"""The benchmark scripts run at toy sizes on the CPU and print their figures."""
import os
import re
import subprocess
import sys
import tarfile

import pytest

from helpers import ROOT


def run_script(name, *args, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], capture_output=True, text=True,
                          env=env, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_default_job_smoke():
    out = run_script("default_job.py", "--seeds", "0", "--budget", "15s", "--set", "model.width=8")
    assert "k-means on raw pixels" in out and "peak host" in out


def test_compare_methods_smoke():
    out = run_script("compare_methods.py", "--data", "digits", "--seeds", "0", "--epochs", "2", "--c3-epochs", "1",
                     "--set", "model.width=8", "--set", "train.batch_size=256")
    for name in ("CC", "C3", "DRC", "CLC", "k-means"):
        assert name in out


def test_stage_curves_smoke():
    out = run_script("stage_curves.py", "--seeds", "0", "--cc-epochs", "1", "--c3-epochs", "1", "--eval-every", "1",
                     "--set", "model.width=8", "--set", "method.cluster_heads=2")
    assert "| cc | 1 |" in out and "| c3 | 1 |" in out


def test_cpu_step_smoke():
    out = run_script("cpu_step.py", "--steps", "2", "--warmup", "1", "--width", "8")
    assert "before: fp32, NCHW" in out and "auto (what fit runs" in out and "vs before" in out


def test_auto_folders_smoke(tmp_path):
    out = run_script("auto_folders.py", "--sets", "digits", "npy", "--limit", "200", "--budget", "8s",
                     "--workdir", str(tmp_path))
    assert "| digits | 200 | 1x28x28 | 10 |" in out and "| npy | 200 | 3x32x32 | 5 |" in out


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
    for part in ("throughput-paper", "throughput-fast", "time-to-quality", "reproduce-cc"):
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
