"""Issue 37's probe, case by case: each finding with its exact outcome, nothing written where it should not
be, and every input byte-unchanged."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT, TINY, cli_process, digit_folder, mnist_subset, run_cli

TINY_FIT = ["--device", "cpu", "--no-progress", "--no-report", *[a for t in TINY for a in ("--set", t)]]


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and the sha256 of its bytes: what a command must leave unchanged."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("contraclust:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# ------------------------------------------------------------------ the command line answers at once
@pytest.mark.parametrize("argv", [["--help"], ["fit", "--help"], ["reproduce", "--help"], ["views", "--help"],
                                  ["fit", "--method", "nope"], ["fit", "--budget", "soon"], ["fit", "-k", "x"],
                                  ["fit", "--out", ""], ["predict", "--help"], ["presets"]])
def test_help_and_argument_errors_never_import_torch(argv):
    """Torch takes seconds to import: ``--help``, the listing of presets and a mistyped argument answer
    without it (the time is printed by ``benchmarks/cli_start.py``)."""
    probe = ("import sys\nfrom contraclust.cli.main import main\ntry:\n    code = main(sys.argv[1:])\n"
             "except SystemExit as exc:\n    code = exc.code\nprint('torch' in sys.modules, code, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    imported, code = done.stderr.strip().splitlines()[-1].split()
    assert imported == "False", done.stderr
    assert int(code) in (0, 1, 2), done.stderr


# ------------------------------------------------------------------ where a run may be written
def test_out_at_a_filesystem_root_or_empty_is_refused_and_nothing_is_written(tmp_path):
    before = sorted(os.listdir("/"))
    root = run_cli("fit", "--data", "digits", "--out", "/", "--epochs", "1", *TINY_FIT, process=True)
    assert root.returncode == 2
    assert one_line(root.stderr) == ("contraclust: error: argument --out: / is a filesystem root; name a folder "
                                     "inside it (see contraclust fit --help)")
    assert sorted(os.listdir("/")) == before
    (tmp_path / "mine.txt").write_text("mine")
    empty = run_cli("fit", "--data", "digits", "--out", "", "--epochs", "1", *TINY_FIT, cwd=tmp_path, process=True)
    assert empty.returncode == 2
    assert one_line(empty.stderr) == ("contraclust: error: argument --out: is empty; name a folder or file to write "
                                      "(see contraclust fit --help)")
    assert sorted(os.listdir(tmp_path)) == ["mine.txt"]


def test_out_at_a_folder_of_other_files_needs_force_and_then_writes_beside_them(tmp_path):
    data = mnist_subset(tmp_path / "d.npz", 200)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("chapter 1")
    (mine / "figures").mkdir()
    (mine / "figures" / "a.png").write_bytes(b"png")
    before = tree_digest(mine)
    refused = run_cli("fit", "--data", str(data), "--out", str(mine), "--epochs", "1", "--method", "cc", *TINY_FIT)
    assert refused.returncode == 1
    assert one_line(refused.stderr) == (
        f"contraclust: error: {mine} holds other files (figures, thesis.tex); a run writes config.json, log.csv, "
        f"checkpoints/, report/ and more into its folder: choose a new or empty folder, or give --force (API: "
        f"force=True) to write beside them")
    assert tree_digest(mine) == before and sorted(os.listdir(mine)) == ["figures", "thesis.tex"]
    forced = run_cli("fit", "--data", str(data), "--out", str(mine), "--epochs", "1", "--method", "cc", "--force",
                     *TINY_FIT)
    assert forced.returncode == 0, forced.stderr
    assert (mine / "metrics.json").exists()
    assert {k: v for k, v in tree_digest(mine).items() if k in before} == before


# ------------------------------------------------------------------ signals before anything is kept
def test_sigterm_before_the_first_checkpoint_says_there_is_nothing_to_resume_and_the_command_starts_afresh(tmp_path):
    data, run = mnist_subset(tmp_path / "d.npz", 400), tmp_path / "run"
    args = ["fit", "--data", str(data), "--epochs", "200", "--method", "cc", "--preset", "mnist5k-cpu", "--out",
            str(run), "--set", "train.checkpoint_every=1000", "--batch-size", "50", *TINY_FIT]
    with cli_process(*args, stderr=subprocess.PIPE) as proc:
        deadline = time.time() + 120
        while not (run / "log.csv").exists():  # training has begun: an epoch is logged, none checkpointed
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert one_line(stderr) == ("contraclust: terminated (SIGTERM); no checkpoint had been written yet, so there is "
                                "nothing to resume: the same command starts afresh")
    again = run_cli(*args[:5], "--epochs", "1", *args[7:])
    assert again.returncode == 0, again.stderr
    assert "holds a run that stopped before its first checkpoint (nothing to resume): starting afresh" in again.stderr


# ------------------------------------------------------------------ the learning rate in log.csv
def test_log_lr_is_the_rate_the_last_step_ran_at_also_across_a_replanned_budget(tmp_path):
    """The guard re-plans (a slower machine) in the middle of an epoch: the cosine is re-fitted there, and
    each epoch's row shows the rate the optimiser last stepped with, never a rate of the re-fitted curve
    read before its anchor (which once gave 3.9e-08)."""
    import torch

    from contraclust.data import read_sklearn_digits
    from contraclust.presets import build_config
    from contraclust.training.trainer import Trainer

    config = build_config("cc", "mnist5k-cpu", epochs=6, batch_size=128, overrides=TINY)
    trainer = Trainer(config, read_sklearn_digits(), tmp_path / "run", torch.device("cpu"))
    seen = []
    original = trainer.step_on_views

    def stepping(view_a, view_b, step, instance_only=False):
        out = original(view_a, view_b, step, instance_only)
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        if step == 20:  # what the budget guard does when the machine slows down
            trainer.schedule.refit(26, step)
        return out

    trainer.step_on_views = stepping
    rows = []
    trainer.fit(on_epoch_end=lambda row: rows.append(row) and False)
    per_epoch = trainer.steps_per_epoch
    assert [row["lr"] for row in rows] == [seen[min(len(seen), e * per_epoch) - 1] for e in range(1, len(rows) + 1)]
    assert min(row["lr"] for row in rows) > 1e-6
    logged = [float(line.split(",")[-5]) for line in (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]]
    assert logged == pytest.approx([row["lr"] for row in rows])


def test_a_refitted_cosine_never_reads_before_its_anchor_as_negative_progress():
    from contraclust.training.schedule import LearningRateSchedule

    schedule = LearningRateSchedule(1e-3, 1000, 10, "cosine")
    schedule.refit(120, 100)
    assert all(0.0 <= schedule.progress(step) <= 1.0 for step in range(0, 130))
    assert schedule.at(99) == pytest.approx(schedule.at(100))


# ------------------------------------------------------------------ predict on other images
def test_predict_on_grey_images_with_a_colour_model_reads_them_as_rgb_and_says_so(tmp_path):
    from helpers import colour_photos

    photos = colour_photos(tmp_path / "photos", 24)
    run = tmp_path / "run"
    fit = run_cli("fit", "--data", str(photos), "-k", "3", "--epochs", "1", "--method", "cc", "--out", str(run),
                  "--no-pretrained", *TINY_FIT)
    assert fit.returncode == 0, fit.stderr
    grey = digit_folder(tmp_path / "grey", 30)
    before = tree_digest(grey)
    done = run_cli("predict", str(run), "--data", str(grey), "--output", str(tmp_path / "p.csv"), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert (f"grey: grey images; the model in {run} takes colour ones: each is read as RGB") in done.stderr
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 31
    assert tree_digest(grey) == before
    vectors = tmp_path / "v.npy"
    np.save(vectors, np.zeros((5, 7), np.float32))
    wrong = run_cli("predict", str(run), "--data", str(vectors), "--output", str(tmp_path / "q.csv"))
    assert wrong.returncode == 1 and not (tmp_path / "q.csv").exists()
    side = fit_side(run)
    assert one_line(wrong.stderr) == (f"contraclust: error: the model in {run} takes images of shape 3x{side}x{side}; "
                                      f"v holds vectors of shape 7")


def fit_side(run: Path) -> int:
    return json.loads((run / "config.json").read_text())["augment"]["size"]


# ------------------------------------------------------------------ a degenerate clustering says so
def test_a_run_that_puts_every_sample_in_one_cluster_says_so_in_one_line_and_atop_its_report(tmp_path):
    same = tmp_path / "same.npy"
    np.save(same, np.ones((64, 5), np.float32))
    run = tmp_path / "run"
    done = run_cli("fit", "--data", str(same), "-k", "4", "--epochs", "1", "--method", "cc", "--preset",
                   "features-cpu", "--batch-size", "32", "--out", str(run), "--device", "cpu", "--no-progress")
    assert done.returncode == 0, done.stderr
    warning = [line for line in done.stderr.splitlines() if "the clustering is degenerate" in line]
    assert warning == ["warning: 3 of the 4 clusters are empty and the largest holds 100% of the samples: the "
                       "clustering is degenerate; train longer (--budget), ask for fewer clusters (-k; contraclust "
                       "suggest-k estimates K), or for groups of unequal sizes try --cluster-prior estimated"]
    assert json.loads((run / "metrics.json").read_text())["warning"] == warning[0].removeprefix("warning: ")
    report = (run / "report.html").read_text()
    assert report.index('id="degenerate"') < report.index("<table>")


# ------------------------------------------------------------------ K from the class folders
def test_k_comes_from_the_class_folders_when_not_given_and_else_points_to_suggest_k(tmp_path):
    folder = digit_folder(tmp_path / "digits", 60)
    classes = sorted(p.name for p in folder.iterdir())
    done = run_cli("fit", "--data", str(folder), "--epochs", "1", "--method", "cc", "--out", str(tmp_path / "r"),
                   *TINY_FIT)
    assert done.returncode == 0, done.stderr
    said = f"K = {len(classes)}: one cluster per class folder of {folder} ({', '.join(classes[:6])}"
    assert said in done.stderr
    assert json.loads((tmp_path / "r" / "config.json").read_text())["n_clusters"] == len(classes)
    listed = run_cli("presets", "--data", str(folder))
    assert said in listed.stdout and f"n_clusters: K = {len(classes)}" in listed.stdout
    flat = tmp_path / "flat"
    flat.mkdir()
    for file in list(folder.rglob("*.png"))[:40]:
        shutil.copy(file, flat / f"{file.parent.name}-{file.name}")
    unsure = run_cli("presets", "--data", str(flat))
    assert (f"K = 10, the default: {flat} has no classes to count; `contraclust suggest-k --data {flat}` suggests "
            f"K, -k sets it") in unsure.stdout


# ------------------------------------------------------------------ runs are found by what they are
def test_a_run_reads_its_own_data_from_any_folder_and_refuses_a_look_alike(tmp_path):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder = digit_folder(work / "digits", 40)
    fit = run_cli("fit", "--data", "digits", "--epochs", "1", "--method", "cc", "--out", "run", *TINY_FIT,
                  cwd=work, process=True)
    assert fit.returncode == 0, fit.stderr
    config = json.loads((work / "run" / "config.json").read_text())
    assert (config["data"], config["data_as_typed"]) == (str(folder), "digits")
    scored = run_cli("evaluate", str(work / "run"), cwd=elsewhere)
    assert scored.returncode == 0, scored.stderr
    digit_folder(elsewhere / "digits", 40)  # a look-alike where the typed path would now point
    again = run_cli("evaluate", str(work / "run"), cwd=elsewhere)
    assert again.returncode == 0 and again.stdout == scored.stdout  # still its own data
    shutil.rmtree(folder)
    digit_folder(folder, 41)  # other data at the run's own path
    look_alike = tree_digest(folder)
    for command in (["evaluate", str(work / "run")], ["report", str(work / "run")],
                    ["predict", str(work / "run"), "--output", str(elsewhere / "p.csv")]):
        refused = run_cli(*command, cwd=elsewhere)
        assert refused.returncode == 1, (command, refused.stderr)
        assert one_line(refused.stderr) == (
            f"contraclust: error: the run's data {folder} (given as digits) is not the data it trained on: it had "
            f"40 samples and now has 41; give --data to use other data on purpose"), command
    assert not (work / "run" / "report.html").exists() and not (elsewhere / "p.csv").exists()
    assert tree_digest(folder) == look_alike
    shutil.rmtree(folder)
    gone = run_cli("evaluate", str(work / "run"), cwd=elsewhere)
    assert one_line(gone.stderr) == (f"contraclust: error: the run's data {folder} (given as digits) is not there "
                                     f"any more; give --data")


# ------------------------------------------------------------------ a full disk
def small_disk_command(mount: Path, size_kb: int, command: str) -> list[str] | None:
    """``command`` run with a tmpfs of ``size_kb`` KB mounted at ``mount`` in a private mount namespace (no
    clean-up needed), or None where this machine does not allow one."""
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if shutil.which("unshare") is None or probe.returncode != 0:
        return None
    return ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size={size_kb}k none {mount} && {command}"]


def test_a_full_disk_ends_with_one_line_naming_the_file_and_leaves_no_partial_file(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    data = mnist_subset(tmp_path / "d.npz", 200)
    before = tree_digest(tmp_path)
    fit = (f"{sys.executable} -m contraclust fit --data {data} --epochs 2 --method cc --preset mnist5k-cpu --out "
           f"{mount}/run --set train.checkpoint_every=1 {' '.join(TINY_FIT)}; echo rc=$?; ls -A {mount}/run "
           f"{mount}/run/checkpoints")
    command = small_disk_command(mount, 200, fit)
    if command is None:
        pytest.skip("this machine allows no private mount namespace (unshare -rm) for a small disk")
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert "rc=1" in done.stdout, done.stdout + done.stderr
    assert one_line(done.stderr) == (f"contraclust: error: cannot write {mount}/run/checkpoints/epoch_0001.pt: no "
                                     f"space left on the device; what was written of it was removed")
    listed = done.stdout.split("rc=1", 1)[1]
    assert ".tmp" not in listed and "epoch_0001.pt" not in listed
    assert tree_digest(tmp_path) == before  # (the small disk was private to the command)


def test_a_failed_checkpoint_write_removes_its_partial_file(tmp_path, monkeypatch):
    """The same without a small disk: the file system refuses the checkpoint's bytes half-way."""
    import errno

    import contraclust.files as files
    from contraclust.errors import WriteError
    from contraclust.training.checkpoint import save_checkpoint

    real_open = open

    class Full:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)

        def write(self, data):
            self.handle.write(bytes(data)[:100])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.handle, name)

    monkeypatch.setattr(files, "open", lambda *a, **k: Full(real_open(*a, **k)), raising=False)
    with pytest.raises(WriteError, match=r"cannot write .*epoch_0003.pt: no space left on the device; what was "
                                         r"written of it was removed"):
        save_checkpoint(tmp_path / "checkpoints", 3, {"model": {}, "config": {}})
    assert list((tmp_path / "checkpoints").iterdir()) == []


# ------------------------------------------------------------------ errors beside progress bars
def run_in_a_terminal(*args: str, timeout: float = 120) -> tuple[str, int]:
    """``contraclust ARGS`` on a pseudo-terminal of 100 columns (where progress bars are drawn): all it wrote."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "contraclust", *args], stdout=slave, stderr=slave,
                            close_fds=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    os.close(slave)
    out = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return out.decode(errors="replace"), proc.wait(timeout=timeout)


def test_an_error_while_a_progress_bar_is_drawn_gets_a_line_of_its_own(tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    for i in range(2400):  # enough for the bar to be drawn before the bad file, the last one read
        (folder / ("a" if i % 2 else "b")).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), i % 255, np.uint8)).save(folder / ("a" if i % 2 else "b") / f"{i}.png")
    (folder / "z").mkdir()
    (folder / "z" / "broken.png").write_bytes(b"not a png")
    text, code = run_in_a_terminal("pack", "--data", str(folder), "--size", "8", "--output",
                                   str(tmp_path / "p.ccpack"), "--workers", "1")
    assert code == 1 and "packing photos at 8 px" in text, text  # the bar was drawn
    assert f"\ncontraclust: error: corrupt or unreadable image file {folder}/z/broken.png" in text, repr(text)


# ------------------------------------------------------------------ more of the probe (issue 37, point 5)
def test_an_array_of_python_objects_is_refused_unread_and_a_write_that_never_began_says_only_why(tmp_path):
    objects = tmp_path / "obj.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    before = objects.read_bytes()
    done = run_cli("fit", "--data", str(objects), "--epochs", "1", *TINY_FIT)
    assert one_line(done.stderr) == (f"contraclust: error: {objects}: the array holds Python objects (a pickle); "
                                     f"contraclust reads arrays of numbers and never unpickles a data file (it "
                                     f"could run code)")
    assert objects.read_bytes() == before
    from contraclust.files import write_whole
    from contraclust.errors import WriteError

    with pytest.raises(WriteError) as refused:
        write_whole("/proc/contraclust-test.csv", "x")
    assert str(refused.value) == "cannot write /proc/contraclust-test.csv: no such file or directory"


def test_a_pack_that_does_not_fit_the_disk_is_refused_at_once_and_leaves_nothing(tmp_path):
    """Its blocks are reserved before the first image is decoded: no SIGBUS from a memory-mapped write hours
    later, no half pack filling the disk."""
    from helpers import colour_photos

    photos = colour_photos(tmp_path / "photos", 60)
    mount = tmp_path / "small"
    mount.mkdir()
    pack = (f"{sys.executable} -m contraclust pack --data {photos} --size 128 --output {mount}/p.ccpack "
            f"--no-progress; echo rc=$?; ls -A {mount}")
    command = small_disk_command(mount, 400, pack)
    if command is None:
        pytest.skip("this machine allows no private mount namespace (unshare -rm) for a small disk")
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert done.stdout.split("rc=")[1].strip() == "1", done.stdout + done.stderr  # and nothing listed after it
    assert one_line(done.stderr) == (f"contraclust: error: cannot write {mount}/p.ccpack/images.npy: no space left "
                                     f"on the device; what was written of it was removed: the pack needs 2.8 MB")
