"""Property-based: whatever arrays and arguments the API is given, it either works or raises one of
the project's own errors (never a bare ValueError, IndexError, RuntimeError...)."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from contraclust.api import ContrastiveClustering
from contraclust.errors import ContraclustError
from helpers import TINY

SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf, -1.0, 1e30])


@st.composite
def images(draw, min_n=0, min_side=1, clean=False):
    """Mostly plausible image arrays: (N, H, W[, C]) of uint8, uint16 or floats, sometimes spoiled."""
    n, h, w = draw(st.integers(min_n, 40)), draw(st.integers(min_side, 12)), draw(st.integers(min_side, 12))
    shape = (n, h, w) + draw(st.sampled_from([(), (1,), (3,)] + ([] if clean else [(2,)])))
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int32]))
    top = {np.uint8: 255, np.uint16: 65535, np.int32: 300}.get(dtype, 1.0)
    array = draw(st.integers(0, 2**32 - 1).map(lambda seed: np.random.default_rng(seed).uniform(0, top, shape)))
    array = array.astype(dtype)
    if not clean and draw(st.booleans()) and array.size and np.issubdtype(dtype, np.floating):
        array.flat[draw(st.integers(0, array.size - 1))] = draw(SPECIAL)
    return array


@st.composite
def features(draw, min_n=0, clean=False):
    """Mostly plausible (N, D) feature matrices, sometimes with NaN, infinities or huge values."""
    shape = (draw(st.integers(min_n, 40)), draw(st.integers(min_n and 1, 9)))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64] + ([] if clean else [np.bool_, np.complex64])))
    array = draw(st.integers(0, 2**32 - 1).map(lambda seed: np.random.default_rng(seed).normal(size=shape)))
    array = array.astype(dtype)
    if not clean and draw(st.booleans()) and array.size and np.issubdtype(dtype, np.floating):
        array.flat[draw(st.integers(0, array.size - 1))] = draw(SPECIAL)
    return array


ANY_ARRAY = st.sampled_from([np.uint8, np.int16, np.float64, np.bool_]).flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6)))
SAMPLES = st.one_of(images(), features(), ANY_ARRAY, st.none(), st.just([[1, 2], [3]]), st.text(max_size=4))
GARBAGE = st.one_of(st.none(), st.floats(allow_nan=True), st.text(max_size=3), st.booleans(), st.integers(-3, 99))
ARGUMENTS = st.fixed_dictionaries({
    "n_clusters": st.one_of(st.integers(2, 4), GARBAGE),
    "method": st.sampled_from([None, "cc", "c3", "drc", "clc", "kmeans", 3]),
    "epochs": st.one_of(st.just(1), st.integers(-1, 1), st.floats(-1, 2)),
    "batch_size": st.one_of(st.none(), st.integers(-1, 16), st.floats(0, 9)),
    "budget": st.one_of(st.none(), st.sampled_from(["1s", "-5m", "soon", "nan", "0"]), st.floats()),
    "device": st.sampled_from(["cpu", "cpu", "auto", None, "nonsense", "cuda:7", ""]),
    "random_state": st.one_of(st.none(), st.integers(-5, 5), st.floats()),
    "overrides": st.one_of(st.just(TINY), st.just("train.epochs=1"), st.lists(st.sampled_from(
        ["optim.lr=nan", "train.log_every=0", "method.x=1", "bad", "augment.size=-1", "train.eval_every=0",
         "train.precision=fp32", "model.backbone=resnet18"]), max_size=2).map(lambda extra: TINY + extra)),
})


PLAUSIBLE_ARGUMENTS = st.fixed_dictionaries({
    "n_clusters": st.integers(2, 4),
    "method": st.sampled_from([None, "cc", "c3", "drc", "clc"]),
    "epochs": st.just(1),
    "batch_size": st.one_of(st.none(), st.integers(2, 16)),
    "device": st.just("cpu"),
    "random_state": st.integers(0, 3),
    "overrides": st.lists(st.sampled_from(["train.precision=fp32", "train.eval_every=1", "method.views_forward=concat",
                                           "augment.size=4", "optim.lr=10"]), max_size=1).map(lambda extra: TINY + extra),
})


def labels_for(n: int, data):
    return data.draw(st.one_of(st.none(), st.none(), hnp.arrays(np.int64, n, elements=st.integers(-1, 3)),
                               hnp.arrays(np.float64, st.integers(0, 4)), st.just([1, 2, 3])))


def fit_then_predict(X, y, arguments, other):
    """Fit, then predict on ``other``, on nothing and on ``X``: any exception must be the project's own."""
    n = len(X) if isinstance(X, np.ndarray) and X.ndim else 0
    model = ContrastiveClustering(progress=False, **arguments)
    try:
        model.fit(X, y)
    except ContraclustError:
        return False
    assert model.labels_.shape == (n,) and model.probabilities_.shape[0] == n
    for samples in (other, X[:0], X):
        try:
            assert model.predict(samples).shape == (len(samples),)
        except ContraclustError:
            pass
    return True


SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])


@settings(max_examples=100, **SETTINGS)
@given(X=SAMPLES, arguments=ARGUMENTS, other=SAMPLES, data=st.data())
def test_any_input_fits_or_raises_only_the_projects_errors(X, arguments, other, data):
    fit_then_predict(X, labels_for(len(X) if isinstance(X, np.ndarray) and X.ndim else 0, data), arguments, other)


@settings(max_examples=30, **SETTINGS)
@given(X=st.one_of(images(min_n=8, min_side=4, clean=True), features(min_n=8, clean=True)),
       arguments=PLAUSIBLE_ARGUMENTS, other=SAMPLES, labelled=st.booleans())
def test_plausible_input_trains_or_raises_only_the_projects_errors(X, arguments, other, labelled):
    labels = np.arange(len(X)) % arguments["n_clusters"] if labelled else None
    fit_then_predict(X, labels, arguments, other)
