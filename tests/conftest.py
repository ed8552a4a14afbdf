import os
import tempfile

from contraclust.threads import available_cores

# A CPU run's last bits depend on how many threads computed it, and contraclust chooses them from the
# measured speed (threads.py). The suite's runs are pinned to torch's own default count, as a user pins
# them with --threads or OMP_NUM_THREADS, so that what is promised bit-exact (a killed run resumes to the
# weights of an uninterrupted one) is; the tests of the choice itself, and the runs beside a busy process,
# take the pin away.
os.environ.setdefault("OMP_NUM_THREADS", str(available_cores()))
# torch.compile's kernels go to a cache of this session's own: inductor's shared cache (/tmp/torchinductor_<user>)
# does not key its CPU kernels on ATEN_CPU_CAPABILITY, and a kernel compiled under AVX2-only settings aborted the
# whole process when a later run with AVX-512 loaded it (seen running the suite both ways on one machine).
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="contraclust-tests-inductor-"))

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Decoded-image caches go to a per-test folder, never the user's cache; the pretrained-weight caches
    are empty ones there too (a fresh machine), so no test finds the user's backbones."""
    monkeypatch.setenv("CONTRACLUST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("CONTRACLUST_BACKBONES", raising=False)
    torch.manual_seed(0)


@pytest.fixture
def caches(tmp_path):
    """The test's (empty) Hugging Face hub cache, made: put a backbone in it to make it "cached"."""
    hub = tmp_path / "hf-hub"
    hub.mkdir(exist_ok=True)
    return hub
