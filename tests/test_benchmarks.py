"""The benchmark scripts run at toy sizes on the CPU and print their figures."""
import os
import subprocess
import sys

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


def test_gpu_campaign_runs_every_part_at_toy_size_on_the_cpu(tmp_path):
    """Also the toy runs of throughput.py and time_to_quality.py, which the campaign calls."""
    data = ROOT.parent / "shared" / "datasets" / "cifar10"
    if not data.is_dir():
        import pytest

        pytest.skip("../shared/datasets/cifar10 not present")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CAMPAIGN_TOY": "1", "CAMPAIGN_TMP": str(tmp_path)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_campaign.sh"), str(data), str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = (tmp_path / "out" / "summary.md").read_text()
    for part in ("throughput-paper", "throughput-fast", "time-to-quality", "reproduce-cc"):
        assert f"## {part}" in summary and (tmp_path / "out" / f"{part}.txt").stat().st_size > 0, part
    assert summary.count("ratio fast / reference") == 2 and "| wall s | epoch | NMI |" in summary
    assert "| paper: CC, last epoch | 1000 | 0.705 | 0.790 | 0.637 |" in summary and "failed" not in summary


def test_streaming_campaign_packs_and_times_both_paths_at_toy_size_on_the_cpu(tmp_path):
    data = ROOT.parent / "shared" / "datasets" / "cifar10"
    if not data.is_dir():
        import pytest

        pytest.skip("../shared/datasets/cifar10 not present")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CAMPAIGN_TOY": "1", "CAMPAIGN_TMP": str(tmp_path)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "streaming_campaign.sh"), str(data),
                           str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = (tmp_path / "out" / "summary.md").read_text()
    for size in (64, 224):
        assert f"packed 64 images (2 classes) at {size} px" in summary
    assert summary.count("streaming path (host memory") == 2 and summary.count("ratio streaming / resident") == 2
    assert "failed" not in summary
