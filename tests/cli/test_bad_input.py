"""The bad-input matrix: every command refuses bad input with exactly one line on stderr, a non-zero
exit and no traceback, before anything is written or run."""
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from helpers import TINY, cli_process, mnist_subset, run_cli, run_cli_here

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
    digit_folder(root / "imgs")
    bomb_png(root / "bomb" / "a" / "big.png")
    huge_npy_header(root / "huge.npy")
    for bad in ("nan", "inf"):
        (root / f"{bad}_labels.csv").write_text("f0,f1,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(9))
                                                + f"1,2,{bad}\n")
    damaged_packs(root)
    return {"root": root, "data": str(data), "run": str(run), "no_ckpt": str(no_ckpt), "corrupt": str(corrupt),
            "other": str(other)}


def digit_folder(folder, n=12):
    """``n`` MNIST digits as 28 px grey PNG files in two class folders."""
    digits = np.load(mnist_subset(folder.parent / f"{folder.name}.npz", 400))
    for i in range(n):
        (folder / str(i % 2)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(digits["x"][i]).save(folder / str(i % 2) / f"{i:03d}.png")
    return folder


def bomb_png(path, side=30000):
    """A small PNG whose header claims ``side`` x ``side`` pixels (its chunk's checksum kept right)."""
    import io
    import struct
    import zlib

    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(out, "PNG")
    raw = bytearray(out.getvalue())
    raw[16:24] = struct.pack(">II", side, side)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    path.write_bytes(bytes(raw))


def huge_npy_header(path):
    """An .npy whose header claims 6 x 10^12 float32 values (23 TiB) over 64 bytes of data."""
    import struct

    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (6000000000000, 1), }"
    header = header + " " * (118 - len(header)) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(64))


def damaged_packs(root):
    """Packs of 8 images, each broken in one way: meta.json's fields, labels, paths, JPEG bytes."""
    import json

    from contraclust.data.pack import pack_folder

    source = digit_folder(root / "pack_source", 8)
    good = pack_folder(source, root / "good.ccpack", size=16, workers=1, progress=False)
    jpeg = pack_folder(source, root / "good-jpeg.ccpack", size=16, workers=1, progress=False, image_format="jpeg")

    def variant(name, base=good):
        shutil.copytree(base, root / name)
        return root / name, json.loads((root / name / "meta.json").read_text())

    for name, change in (("unpacked", lambda m: m.pop("packed")), ("text_n", lambda m: m.update(n="24")),
                         ("null_classes", lambda m: m.update(classes=None))):
        folder, meta = variant(f"{name}.ccpack")
        change(meta)
        (folder / "meta.json").write_text(json.dumps(meta))
    folder, _ = variant("nan_labels.ccpack")
    np.save(folder / "labels.npy", np.full(8, np.nan))
    folder, _ = variant("label_range.ccpack")
    np.save(folder / "labels.npy", np.arange(8) % 5)
    folder, _ = variant("outside.ccpack")
    lines = (folder / "paths.txt").read_text().splitlines()
    (folder / "paths.txt").write_text("\n".join(['"/etc/passwd"', '"../../x.png"'] + lines[2:]) + "\n")
    folder, _ = variant("corrupt.ccpack", jpeg)
    blob = bytearray((folder / "jpeg.bin").read_bytes())
    offsets = np.load(folder / "offsets.npy")
    blob[int(offsets[3]): int(offsets[3]) + 2] = b"\x00\x00"  # image 3 no longer starts as a JPEG
    (folder / "jpeg.bin").write_bytes(bytes(blob))


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
    "data objects": (FIT + ["--data", "{root}/objects.npy"],
                     "holds Python objects (a pickle); contraclust reads arrays of numbers and never unpickles"),
    "evaluate missing": (["evaluate", "{root}/nowhere"], "does not exist"),
    "evaluate not a run": (["evaluate", "{root}"], "no checkpoint"),
    "evaluate unlabelled": (["evaluate", "{run}", "--data", "{root}/vectors.npy"], "has no labels"),
    "predict other shape": (["predict", "{run}", "--data", "{root}/vectors.npy", "--output", "{root}/p.csv"],
                            "takes images of shape 1x28x28; vectors holds vectors of shape 7"),
    "predict into a folder": (["predict", "{run}", "--data", "{data}", "--output", "{root}"], "is a folder"),
    "views output folder": (["views", "--output", "{root}/views_dir"], "is a folder"),
    "presets missing data": (["presets", "--data", "{root}/nowhere"], "does not exist"),
    "data broken pack": (FIT + ["--data", "{root}/broken.ccpack"], "is not a .ccpack description"),
    "pack missing folder": (["pack", "--data", "{root}/nowhere", "--size", "32", "--output", "{root}/p.ccpack"],
                            "is not a folder of images"),
    "pack output suffix": (["pack", "--data", "{root}", "--size", "32", "--output", "{root}/p.npy"],
                           "must end in .ccpack"),
    "pack size": (["pack", "--data", "{root}", "--size", "2", "--output", "{root}/p.ccpack"], "between 4 and 1024"),
    # the hostile tester's cases (data lost, silent wrong results, tracebacks)
    "predict output is the data": (["predict", "{run}", "--data", "{data}", "--output", "{data}"],
                                   "is the data itself"),
    "predict output in the data": (["predict", "{run}", "--data", "{root}/imgs", "--output", "{root}/imgs/0/000.png"],
                                   "lies inside the data folder"),
    "predict output in the run": (["predict", "{run}", "--data", "{data}", "--output",
                                   "{run}/checkpoints/epoch_0001.pt"], "lies inside the run folder"),
    "copy into the data": (["predict", "{run}", "--data", "{root}/imgs", "--output", "{root}/p2.csv",
                            "--copy-into", "{root}/imgs/sorted"], "lies inside the data folder"),
    "fit into the data": (FIT + ["--data", "{root}/imgs", "--out", "{root}/imgs/run", *TINY_ARGS],
                          "lies inside the data folder"),
    "image bomb": (FIT + ["--data", "{root}/bomb"], "30000 x 30000 pixels, more than the 89,478,485"),
    "seed too large": (FIT + ["--seed", "99999999999999999999"], "train.seed must be at most 4294967295"),
    "label nan": (FIT + ["--data", "{root}/nan_labels.csv", "--label-column", "label"], "non-finite value (nan)"),
    "label inf": (FIT + ["--data", "{root}/inf_labels.csv", "--label-column", "label"], "non-finite value (inf)"),
    "npy of 23 TiB": (FIT + ["--data", "{root}/huge.npy"], "cannot read array file"),
    "pack without packed": (FIT + ["--data", "{root}/unpacked.ccpack"], "meta.json has no 'packed'"),
    "pack n as text": (FIT + ["--data", "{root}/text_n.ccpack"], "meta.json's 'n' is '24'"),
    "pack classes null": (FIT + ["--data", "{root}/null_classes.ccpack"], "meta.json's 'classes' is None"),
    "pack nan labels": (FIT + ["--data", "{root}/nan_labels.ccpack"], "labels.npy holds float64 values"),
    "pack labels out of range": (FIT + ["--data", "{root}/label_range.ccpack"], "labels.npy holds labels from 0 to 4"),
    "pack paths outside": (FIT + ["--data", "{root}/outside.ccpack"], "points outside the pack's source folder"),
    "pack corrupt jpeg": (FIT + ["--data", "{root}/corrupt.ccpack"], "image 3 of the pack is not a whole JPEG"),
    "model width absurd": (FIT + ["--set", "model.width=1000000"], "model.width must be at most 512"),
    "view size absurd": (FIT + ["--set", "augment.size=50000"], "augment.size must be at most 1024"),
}
USAGE_CASES = {
    "override without =": FIT + ["--set", "train.epochs"],  # bad usage: exit 2, as argparse's own
    "image size absurd": ["fit", "--image-size", "30000"],
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
IN_A_PROCESS = ("device nonsense", "usage: override without =", "resume changes k", "data nan", "usage: unknown option")


@pytest.fixture(scope="module")
def outcomes(files):
    """Every case's (stderr, exit code, files it created), run in this process from the data folder (so that a
    command's default ``runs/`` would appear there too), and the cases of ``IN_A_PROCESS`` again as processes."""
    root = files["root"]
    before = contents(root)
    commands = {name: [a.format(**files) for a in args] for name, (args, _) in CASES.items()}
    commands.update({f"usage: {name}": args for name, args in USAGE_CASES.items()})
    results = {name: run_cli_here(*args, cwd=root) for name, args in commands.items()}
    with ThreadPoolExecutor(max_workers=len(IN_A_PROCESS)) as pool:
        processes = dict(zip(IN_A_PROCESS, pool.map(lambda name: run_cli(*commands[name], cwd=root, process=True),
                                                     IN_A_PROCESS)))
    after = contents(root)
    changed = {path for path in set(before) | set(after) if before.get(path) != after.get(path)}
    return results, changed, processes


def contents(root):
    """Every file below ``root`` (the commands' working folder: their default ``runs/`` would be there too)
    and a digest of its bytes, so that a file overwritten in place counts as written."""
    import hashlib

    return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
            for p in root.rglob("*") if not p.name.startswith(".contraclust")}


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
    """No file created, none changed (the data, the checkpoint an --output named), anywhere below the folder
    the commands ran in."""
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


# ------------------------------------------------------------------ outcomes beyond a refusal
TINY_FIT = ["--device", "cpu", "--no-progress", "--no-report", *TINY_ARGS]


def test_sigterm_ends_a_run_as_ctrl_c_does_and_releases_its_lock(tmp_path):
    """Exit 143 with its message, the lock file no longer naming the dead process, the run resumable."""
    import signal
    import subprocess
    import time

    from contraclust.markers import RUN_LOCK

    data, run = mnist_subset(tmp_path / "d.npz", 400), tmp_path / "run"
    with cli_process("fit", "--data", str(data), "--epochs", "40", "--batch-size", "50", "--method", "cc",
                     "--preset", "mnist5k-cpu", "--out", str(run), "--set", "train.checkpoint_every=1", *TINY_FIT,
                     stderr=subprocess.PIPE) as proc:
        deadline = time.time() + 120
        while not (run / "checkpoints").is_dir() or not any((run / "checkpoints").glob("epoch_*.pt")):
            assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143 and f"terminated (SIGTERM); the last checkpoint in {run} is kept" in stderr, stderr
    assert "Traceback" not in stderr and (run / RUN_LOCK).read_text() == ""  # released: it names no one
    resumed = run_cli("fit", "--out", str(run), "--resume", "--epochs", "3", "--no-report")
    assert resumed.returncode == 0 and "taking over the lock" not in resumed.stderr, resumed.stderr


def test_views_of_fewer_images_than_asked_show_them_all(tmp_path):
    for i in range(3):
        (tmp_path / "three").mkdir(exist_ok=True)
        Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(tmp_path / "three" / f"{i}.png")
    done = run_cli("views", "--data", str(tmp_path / "three"), "--output", str(tmp_path / "v.png"))
    assert done.returncode == 0 and (tmp_path / "v.png").stat().st_size > 1000, done.stderr


def test_evaluate_says_when_the_clusters_and_the_classes_differ_in_number(files):
    done = run_cli("evaluate", files["run"], "--data", str(files["root"] / "imgs"))
    assert done.returncode == 0 and "the run has 10 clusters and the data 2 classes" in done.stderr, done.stderr
    assert "NMI" in done.stdout


def test_a_semicolon_table_is_read_with_semicolons_and_said_so(tmp_path):
    rows = "".join(f"{i % 4};{(i * 7) % 5};{i % 2}\n" for i in range(40))
    (tmp_path / "t.csv").write_text("f0;f1;label\n" + rows)
    done = run_cli("fit", "--data", str(tmp_path / "t.csv"), "--label-column", "label", "-k", "2", "--epochs", "1",
                   "--out", str(tmp_path / "run"), *TINY_FIT)
    assert done.returncode == 0, done.stderr
    assert "header has no commas but semicolons: read with semicolons" in done.stderr


def test_a_budget_too_short_to_meet_is_said_to_be(tmp_path):
    done = run_cli("fit", "--data", str(mnist_subset(tmp_path / "d.npz", 400)), "--budget", "1s", "--method", "cc",
                   "--out", str(tmp_path / "run"), *TINY_FIT)
    assert done.returncode == 0, done.stderr
    assert "the time budget of 1 s cannot be met" in done.stderr


def test_an_empty_checkpoints_folder_is_no_run(tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "cc-stage" / "checkpoints").mkdir(parents=True)
    done = run_cli("fit", "--data", str(mnist_subset(tmp_path / "d.npz", 400)), "--epochs", "1", "--method", "cc",
                   "--out", str(tmp_path / "run"), *TINY_FIT)
    assert done.returncode == 0, done.stderr


def test_the_estimator_names_images_and_vectors_when_only_their_shape_differs():
    from contraclust import ContrastiveClustering
    from contraclust.data import read_sklearn_digits
    from contraclust.errors import DataError

    digits = read_sklearn_digits()
    model = ContrastiveClustering(method="cc", preset="mnist5k-cpu", epochs=1, batch_size=256, device="cpu",
                                  progress=False, overrides=TINY).fit(digits.images.numpy())
    with pytest.raises(DataError, match=r"X holds feature vectors of shape \(64,\), but ContrastiveClustering was "
                                        r"fitted on images of shape \(1, 8, 8\)"):
        model.predict(digits.images.numpy().reshape(len(digits), 64).astype(np.float32))
