"""Short real runs that must cluster well: a broken augmentation, loss, schedule or read-out fails here.

Each floor comes from the spread measured over seeds with the configuration below on 2 CPU cores (the
default job, ``auto``: a CC stage, then C3), printed by ``python benchmarks/quality_floors.py``:

- digits vectors (1,797 x 64), 60 epochs: NMI over seeds 0-7 0.821, 0.814, 0.793, 0.813, 0.789, 0.817,
  0.776, 0.784 (mean 0.801, sd 0.017), about 10 s a run; k-means (n_init=10) 0.741. Floor 0.77: below
  every seed, 1.8 sd under the mean, 0.03 above k-means.
- MNIST-5k images (5,000 x 28 x 28), 14 epochs of a width-16 CNN on 20 px views: NMI over seeds 0-5
  0.600, 0.667, 0.607, 0.614, 0.615, 0.601 (mean 0.617, sd 0.025), about 30 s a run; k-means on the
  pixels 0.466. Floor 0.54: below every seed, 3 sd under the mean, 0.07 above k-means.

The runs are seeded, so on one machine each gives one number; the spread over seeds stands for what
another machine's arithmetic may change.
"""
import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score

from contraclust import ContrastiveClustering, load_data

DIGITS_FLOOR = 0.77
MNIST_FLOOR = 0.54
MNIST_KMEANS_NMI = 0.466  # benchmarks/compare_methods.py's k-means row (n_init=10, seeds 0-2)


def test_the_default_job_on_digits_vectors_stays_above_its_floor():
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    model = ContrastiveClustering(n_clusters=10, epochs=60, random_state=0, device="cpu", progress=False).fit(X, y)
    kmeans = normalized_mutual_info_score(y, KMeans(10, n_init=10, random_state=0).fit_predict(X))
    assert model.config_.method == "c3" and model.history_
    assert model.metrics_["nmi"] >= DIGITS_FLOOR and model.metrics_["nmi"] > kmeans + 0.02, (model.metrics_, kmeans)


def test_the_default_job_on_mnist5k_images_stays_above_its_floor():
    data = load_data("mnist5k")
    model = ContrastiveClustering(n_clusters=10, epochs=14, random_state=0, device="cpu", progress=False,
                                  overrides=["model.width=16", "augment.size=20", "train.eval_every=0"]).fit(data)
    assert model.config_.method == "c3" and model.config_.model.backbone == "small_cnn"
    assert model.metrics_["nmi"] >= MNIST_FLOOR > MNIST_KMEANS_NMI + 0.05, model.metrics_
