"""suggest-k: K ranges, one run with heads of many K, the signals per K, the outputs and the CLI."""
import json

import pytest

from contraclust.data import read_sklearn_digits
from contraclust.errors import ConfigError
from contraclust.presets import build_config
from contraclust.recipes.auto import DataProfile
from contraclust.selection import parse_k_range, suggest_k
from contraclust.selection.suggest import SIGNALS, format_table, write_outputs
from helpers import TINY, run_cli


def test_k_ranges():
    assert parse_k_range("2:5") == [2, 3, 4, 5] and parse_k_range("2:10:4") == [2, 6, 10]
    assert parse_k_range("20,5,10") == [5, 10, 20]
    for bad in ("1:5", "5", "a:b", "2:3:4:5"):
        with pytest.raises(ConfigError, match="range"):
            parse_k_range(bad)
    with pytest.raises(ConfigError, match="the data has 8 samples"):
        parse_k_range("2:10", n_samples=8)


def test_one_run_measures_every_signal_per_k_and_ranks_them(tmp_path):
    data = read_sklearn_digits()
    data.images, data.labels = data.images[:200], data.labels[:200]
    config = build_config("cc", None, profile=DataProfile.of(data), device="cpu", n_clusters=6, epochs=2,
                          batch_size=100, overrides=TINY + ["train.progress=false"])
    result = suggest_k(data, [2, 4, 6], config, "cpu", progress=False)
    assert result.ks == [2, 4, 6] and sorted(result.ranking) == [2, 4, 6] and result.recommended == result.ranking[0]
    for k in (2, 4, 6):
        row = result.signals[k]
        assert set(SIGNALS) | {"nmi", "acc", "ari"} <= set(row)
        assert 0 <= row["view_agreement"] <= 1 and 1 <= row["used"] <= k and -1 <= row["stability"] <= 1
        assert 0 <= row["entropy"] <= 1 and 1 / k <= row["confidence"] <= 1
        assert result.scores[k] == pytest.approx(row["stability"] * row["view_agreement"] * max(row["silhouette"], 0),
                                                 abs=1e-3)
    assert f"K={result.recommended}" in result.reason and result.train["epochs"] == 2
    written = write_outputs(result, tmp_path / "out")
    assert [p.name for p in written] == ["suggest_k.json", "suggest_k.md", "suggest_k.png"]
    assert json.loads(written[0].read_text())["recommended"] == result.recommended
    assert "| K | score | rank | confidence" in format_table(result) and written[2].stat().st_size > 5000


def test_cli_suggest_k_on_real_digits_puts_the_true_k_in_its_top_two(tmp_path):
    """The promise of docs/imbalance-and-k.md on real data: scikit-learn's digits (10 classes), K from 8 to 12, 16 epochs (what
    a 40 s budget gives on a 2-core AVX2 machine; a budget's epochs vary with the machine and its load, and
    in one suite run there 40 s ranked K=10 fourth, so the ranking is tested at a fixed length: measured
    9, 10, 8, 11, 12), in fp32 (what precision=auto is there; on an AVX-512 machine with native bf16, auto's
    bf16 ranked 11, 8, 10, 12, 9, and fp32 10, 9, 11, 12, 8). Then a budget holds: K 9 and 10 in 10 s."""
    done = run_cli("suggest-k", "--data", "digits", "--range", "8:12", "--epochs", "16", "--out",
                   str(tmp_path / "k"), "--no-progress", "--device", "cpu", "--set", "train.precision=fp32")
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "k" / "suggest_k.json").read_text())
    assert sorted(result["ranking"]) == [8, 9, 10, 11, 12] and 10 in result["ranking"][:2], result["ranking"]
    assert f"recommended K = {result['recommended']}" in done.stdout and (tmp_path / "k" / "suggest_k.md").exists()
    budgeted = run_cli("suggest-k", "--data", "digits", "--range", "9:10", "--budget", "10s", "--out",
                       str(tmp_path / "k10"), "--no-progress", "--device", "cpu")
    assert budgeted.returncode == 0, budgeted.stderr
    assert json.loads((tmp_path / "k10" / "suggest_k.json").read_text())["train"]["wall_seconds"] <= 10.0
    bad = run_cli("suggest-k", "--range", "1:5")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "each at least 2" in bad.stderr
