"""The bad-input matrix: every command refuses bad input with exactly one line on stderr, a non-zero
exit and no traceback, before anything is written or run."""
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from helpers import TINY, mnist_subset, run_cli, run_cli_here

TINY_ARGS = [a for t in TINY for a in ("--set", t)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small data set, a finished run on it, and assorted bad paths."""
    root = tmp_path_factory.mktemp("matrix")
    data = mnist_subset(root / "digits.npz", 200)
    run = root / "run"
    fit = run_cli("fit", "--data", str(data), "--method", "cc", "--preset", "mnist5k-cpu", "--epochs", "1",
                  "--batch-size", "100", "--out", str(run), "--device", "cpu", "--no-progress", "--no-report",
                  *TINY_ARGS)
    assert fit.returncode == 0, fit.stderr
    (root / "a_file").write_text("not a folder")
    (root / "notes.txt").write_text("text")
    np.save(root / "nan.npy", np.full((20, 8), np.nan, np.float32))
    np.save(root / "vectors.npy", np.random.default_rng(0).normal(size=(50, 7)).astype(np.float32))
    np.save(root / "empty.npy", np.zeros((0, 8), np.float32))
    np.save(root / "negative.npy", -np.ones((20, 8, 8), np.int16))
    np.save(root / "objects.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    no_ckpt = root / "no_checkpoint"
    no_ckpt.mkdir()
    shutil.copy(run / "config.json", no_ckpt / "config.json")
    corrupt = root / "corrupt_config"
    shutil.copytree(run, corrupt)
    (corrupt / "config.json").write_text("{ this is not json")
    other = root / "other_backbone"
    other_fit = run_cli("fit", "--data", str(data), "--method", "cc", "--preset", "mnist5k-cpu", "--epochs", "1",
                        "--batch-size", "100", "--out", str(other), "--device", "cpu", "--no-progress", "--no-report",
                        "--set", "model.backbone=resnet18", "--set", "model.stem=cifar", *TINY_ARGS)
    assert other_fit.returncode == 0, other_fit.stderr
    (root / "views_dir").mkdir()
    (root / "broken.ccpack").mkdir()
    (root / "broken.ccpack" / "meta.json").write_text("{}")
    return {"root": root, "data": str(data), "run": str(run), "no_ckpt": str(no_ckpt), "corrupt": str(corrupt),
            "other": str(other)}


FIT = ["fit", "--device", "cpu", "--epochs", "1"]
CASES = {
    "device nonsense": (["fit", "--device", "nonsense"], "unknown device"),
    "device meta": (["fit", "--device", "meta"], "unsupported device"),
    "negative lr": (FIT + ["--set", "optim.lr=-0.1"], "optim.lr must be greater than 0"),
    "nan lr": (FIT + ["--set", "optim.lr=nan"], "optim.lr must be a finite number"),
    "checkpoint_every 0": (FIT + ["--set", "train.checkpoint_every=0"], "train.checkpoint_every must be at least 1"),
    "log_every 0": (FIT + ["--set", "train.log_every=0"], "train.log_every must be at least 1"),
    "eval_batch_size 0": (FIT + ["--set", "train.eval_batch_size=0"], "train.eval_batch_size must be at least 1"),
    "unknown field": (FIT + ["--set", "train.epochz=3"], "unknown config field"),
    "override without =": (FIT + ["--set", "train.epochs"], "must look like section.field=value"),
    "epochs 0": (["fit", "--epochs", "0"], "train.epochs must be at least 1"),
    "batch size 1": (FIT + ["--batch-size", "1"], "batch_size must be at least 2"),
    "k 1": (FIT + ["-k", "1"], "n_clusters must be at least 2"),
    "k above N": (FIT + ["--data", "{data}", "-k", "500", *TINY_ARGS], "only 200 samples"),
    "bad budget": (["fit", "--budget", "ten minutes-ish"], "cannot read the duration"),
    "zero budget": (["fit", "--budget", "0s"], "positive duration"),
    "out is a file": (FIT + ["--data", "{data}", "--out", "{root}/a_file", *TINY_ARGS], "is a file"),
    "out unwritable": (FIT + ["--data", "{data}", "--out", "{root}/a_file/run", *TINY_ARGS],
                       "cannot write the run folder"),
    "out holds a run": (FIT + ["--data", "{data}", "--out", "{run}", *TINY_ARGS], "already holds a run"),
    "resume without run": (["fit", "--out", "{root}/nowhere", "--resume"], "has none"),
    "resume without checkpoint": (["fit", "--out", "{no_ckpt}", "--resume"], "no checkpoint yet"),
    "resume corrupt config": (["fit", "--out", "{corrupt}", "--resume"], "is corrupt"),
    "resume changes k": (["fit", "--out", "{run}", "--resume", "-k", "5"], "n_clusters (10 -> 5)"),
    "resume changes method": (["fit", "--out", "{run}", "--resume", "--method", "drc"], "method ('cc' -> 'drc')"),
    "resume changes seed": (["fit", "--out", "{run}", "--resume", "--seed", "9"], "train.seed"),
    "resume changes batch": (["fit", "--out", "{run}", "--resume", "--batch-size", "50"], "train.batch_size"),
    "resume changes data": (["fit", "--out", "{run}", "--resume", "--data", "digits"], "data ("),
    "resume changes set": (["fit", "--out", "{run}", "--resume", "--set", "optim.lr=0.1"], "optim.lr"),
    "resume with init": (["fit", "--out", "{run}", "--resume", "--init", "{run}"], "cannot be combined"),
    "init other backbone": (FIT + ["--data", "{data}", "--init", "{other}", "--out", "{root}/i", *TINY_ARGS],
                            "match 0 of this backbone's"),
    "init missing": (FIT + ["--data", "{data}", "--init", "{root}/nowhere.pt", "--out", "{root}/j"], "does not exist"),
    "data missing": (FIT + ["--data", "{root}/nowhere"], "does not exist"),
    "data text file": (FIT + ["--data", "{root}/notes.txt"], "must be .npy, .npz, .csv, .tsv or .parquet"),
    "data nan": (FIT + ["--data", "{root}/nan.npy"], "NaN"),
    "data empty": (FIT + ["--data", "{root}/empty.npy"], "empty"),
    "data negative": (FIT + ["--data", "{root}/negative.npy"], "must not be negative"),
    "data objects": (FIT + ["--data", "{root}/objects.npy"], "cannot read array file"),
    "evaluate missing": (["evaluate", "{root}/nowhere"], "does not exist"),
    "evaluate not a run": (["evaluate", "{root}"], "no checkpoint"),
    "evaluate unlabelled": (["evaluate", "{run}", "--data", "{root}/vectors.npy"], "has no labels"),
    "predict other shape": (["predict", "{run}", "--data", "{root}/vectors.npy", "--output", "{root}/p.csv"],
                            "does not fit"),
    "predict into a folder": (["predict", "{run}", "--data", "{data}", "--output", "{root}"], "is a folder"),
    "views output folder": (["views", "--output", "{root}/views_dir"], "is a folder"),
    "presets missing data": (["presets", "--data", "{root}/nowhere"], "does not exist"),
    "data broken pack": (FIT + ["--data", "{root}/broken.ccpack"], "is not a .ccpack description"),
    "pack missing folder": (["pack", "--data", "{root}/nowhere", "--size", "32", "--output", "{root}/p.ccpack"],
                            "is not a folder of images"),
    "pack output suffix": (["pack", "--data", "{root}", "--size", "32", "--output", "{root}/p.npy"],
                           "must end in .ccpack"),
    "pack size": (["pack", "--data", "{root}", "--size", "2", "--output", "{root}/p.ccpack"], "between 4 and 1024"),
}
USAGE_CASES = {
    "image size negative": ["fit", "--image-size", "-4"],
    "views n 0": ["views", "-n", "0"],
    "unknown option": ["fit", "--colour", "red"],
    "unknown command": ["train"],
    "unknown preset": ["fit", "--preset", "nonsense"],
    "unknown method": ["fit", "--method", "kmeans"],
    "k not a number": ["fit", "-k", "ten"],
}


def one_line(result):
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("contraclust: error:"), result.stderr
    return lines[0]


# A few cases also run as real processes: what the interpreter itself prints (a traceback, a warning from C
# code) and the exit status are those of a fresh ``contraclust`` process.
IN_A_PROCESS = ("device nonsense", "override without =", "resume changes k", "data nan", "usage: unknown option")


@pytest.fixture(scope="module")
def outcomes(files):
    """Every case's (stderr, exit code, files it created), run in this process from the data folder (so that a
    command's default ``runs/`` would appear there too), and the cases of ``IN_A_PROCESS`` again as processes."""
    root = files["root"]
    before = {p.relative_to(root) for p in root.rglob("*")}
    commands = {name: [a.format(**files) for a in args] for name, (args, _) in CASES.items()}
    commands.update({f"usage: {name}": args for name, args in USAGE_CASES.items()})
    results = {name: run_cli_here(*args, cwd=root) for name, args in commands.items()}
    with ThreadPoolExecutor(max_workers=len(IN_A_PROCESS)) as pool:
        processes = dict(zip(IN_A_PROCESS, pool.map(lambda name: run_cli(*commands[name], cwd=root, process=True),
                                                     IN_A_PROCESS)))
    created = {p.relative_to(root) for p in root.rglob("*")} - before
    return results, created, processes


def test_the_cases_run_as_processes_end_as_they_do_in_this_one(outcomes):
    results, _, processes = outcomes
    for name, process in processes.items():
        assert (process.returncode, one_line(process)) == (results[name].returncode, one_line(results[name])), name


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_exit_1(outcomes, name):
    result = outcomes[0][name]
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert CASES[name][1] in one_line(result)


@pytest.mark.parametrize("name", list(USAGE_CASES))
def test_bad_usage_is_one_line_and_exit_2(outcomes, name):
    result = outcomes[0][f"usage: {name}"]
    assert result.returncode == 2
    assert "--help" in one_line(result)


def test_nothing_was_written_by_any_refused_command(outcomes):
    assert outcomes[1] == set(), outcomes[1]


def test_a_truncated_image_cache_is_rebuilt_with_a_warning(tmp_path):
    folder = tmp_path / "imgs" / "a"
    folder.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(folder / f"{i}.png")
    env_cache = tmp_path / "cache"  # conftest points CONTRACLUST_CACHE here
    first = run_cli("presets", "--data", str(tmp_path / "imgs"), "--device", "cpu")
    assert first.returncode == 0, first.stderr
    (cache_file,) = env_cache.glob("*.npz")
    cache_file.write_bytes(cache_file.read_bytes()[:50])
    second = run_cli("presets", "--data", str(tmp_path / "imgs"), "--device", "cpu")
    assert second.returncode == 0 and "Traceback" not in second.stderr, second.stderr
    assert "image cache" in second.stderr and "unreadable" in second.stderr
    assert first.stdout == second.stdout
