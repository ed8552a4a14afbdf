"""One request, one preparation: ``contraclust fit``'s arguments and the estimator's parameters, asking for
the same run, become the same request and the same config, field by field; no field is set after it."""
import json

import numpy as np
import pytest

from contraclust.api import ContrastiveClustering
from contraclust.cli.fit import request_of
from contraclust.cli.main import build_parser, main
from contraclust.config import config_from_dict
from contraclust.prepare import prepare
from contraclust.request import FitRequest
from helpers import mnist_subset

# (CLI arguments after `fit --data X`, the estimator's parameters): the same run asked for by each face
SAME_RUNS = [
    (["-k", "10", "--budget", "30s"], dict(n_clusters=10, budget="30s")),
    (["-k", "5", "--method", "cc", "--epochs", "3", "--seed", "7", "--batch-size", "64"],
     dict(n_clusters=5, method="cc", epochs=3, random_state=7, batch_size=64)),
    (["-k", "10", "--preset", "mnist5k-cpu", "--method", "drc", "--epochs", "2", "--set", "optim.lr=0.002"],
     dict(n_clusters=10, preset="mnist5k-cpu", method="drc", epochs=2, overrides=["optim.lr=0.002"])),
    (["-k", "10", "--cluster-prior", "estimated", "--prior-weight", "0.5", "--budget", "2m"],
     dict(n_clusters=10, cluster_prior="estimated", prior_weight=0.5, budget="2m")),
]


def cli_config(data, arguments):
    args = build_parser().parse_args(["fit", "--data", str(data), "--device", "cpu", "--no-progress", "--no-report",
                                      *arguments])
    return prepare(request_of(args)).config


def api_config(data, parameters):
    estimator = ContrastiveClustering(device="cpu", progress=False, **parameters)
    return prepare(estimator._request(str(data), None)).config


@pytest.mark.parametrize("source", ["digits", "mnist-subset"])
@pytest.mark.parametrize("arguments, parameters", SAME_RUNS)
def test_the_cli_and_the_api_prepare_the_same_config_field_by_field(tmp_path, source, arguments, parameters):
    data = "digits" if source == "digits" else mnist_subset(tmp_path / "d.npz", 300)
    by_cli, by_api = cli_config(data, arguments).to_dict(), api_config(data, parameters).to_dict()
    assert by_cli.keys() == by_api.keys()
    differing = {key: (by_cli[key], by_api[key]) for key in by_cli if by_cli[key] != by_api[key]}
    assert not differing


def test_the_config_a_run_writes_is_the_one_prepared(tmp_path):
    """No field is set after ``prepare``: what the CLI's run writes to config.json, and what the estimator's run
    holds, are the prepared config."""
    data = mnist_subset(tmp_path / "d.npz", 300)
    arguments = ["-k", "10", "--method", "cc", "--epochs", "1", "--batch-size", "100", "--seed", "0"]
    prepared = cli_config(data, arguments)
    assert main(["fit", "--data", str(data), "--device", "cpu", "--no-progress", "--no-report", "--out",
                 str(tmp_path / "run"), *arguments]) == 0
    written = config_from_dict(json.loads((tmp_path / "run" / "config.json").read_text()))
    assert written.to_dict() == prepared.to_dict()
    estimator = ContrastiveClustering(n_clusters=10, method="cc", epochs=1, batch_size=100, random_state=0,
                                      device="cpu", progress=False).fit(str(data))
    assert estimator.config_.to_dict() == prepared.to_dict()


def test_a_bad_budget_is_refused_by_the_request_before_anything_is_read(tmp_path):
    from contraclust.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot read the duration"):
        FitRequest(data=str(tmp_path / "nowhere"), budget="ten minutes-ish").budget_seconds()
    with pytest.raises(ConfigError, match="--freeze"):
        prepare(FitRequest(data="digits", backbone="dinov2-small"))


def test_arrays_in_memory_prepare_as_the_estimator_always_did():
    x = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    prepared = prepare(FitRequest(data=x, n_clusters=3, epochs=1, face="api", name_a_folder=False, report=False))
    assert prepared.out is None and prepared.config.data is None and len(prepared.data) == 60
    assert prepared.config.n_clusters == 3 and prepared.config.train.epochs == 1
