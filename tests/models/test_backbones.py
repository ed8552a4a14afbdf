import pytest
import torch

from contraclust.config import ModelConfig
from contraclust.errors import ConfigError
from contraclust.models import ClusterHead, InstanceHead, build_backbone


@pytest.mark.parametrize("depth,dim", [("resnet18", 512), ("resnet34", 512), ("resnet50", 2048)])
def test_resnets_output_dims_and_stems(depth, dim):
    cifar = build_backbone(ModelConfig(backbone=depth, stem="cifar"), (3, 32, 32))
    assert cifar.out_dim == dim and cifar(torch.rand(2, 3, 32, 32)).shape == (2, dim)
    imagenet = build_backbone(ModelConfig(backbone=depth, stem="imagenet"), (3, 64, 64))
    assert imagenet(torch.rand(2, 3, 64, 64)).shape == (2, dim)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in cifar.modules())
    assert any(isinstance(m, torch.nn.MaxPool2d) for m in imagenet.modules())


def test_resnet34_has_cc_layout_and_no_fc():
    net = build_backbone(ModelConfig(backbone="resnet34"), (3, 224, 224))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].kernel_size == (7, 7) and convs[0].stride == (2, 2)
    assert sum(1 for m in net.layers) == 3 + 4 + 6 + 3
    assert not any(isinstance(m, torch.nn.Linear) for m in net.modules())


def test_small_cnn_grey_and_mlp():
    cnn = build_backbone(ModelConfig(backbone="small_cnn", width=8), (1, 28, 28))
    assert cnn(torch.rand(3, 1, 28, 28)).shape == (3, 32)
    mlp = build_backbone(ModelConfig(backbone="mlp", mlp_hidden=(64, 32)), (10,))
    assert mlp(torch.rand(4, 10)).shape == (4, 32)
    with pytest.raises(ConfigError):
        build_backbone(ModelConfig(backbone="resnet18"), (10,))
    with pytest.raises(ConfigError):
        build_backbone(ModelConfig(backbone="vgg"), (3, 32, 32))


def test_heads():
    h = torch.randn(5, 12)
    z = InstanceHead(12, 7)(h)
    assert z.shape == (5, 7) and torch.allclose(z.norm(dim=1), torch.ones(5), atol=1e-5)
    c = ClusterHead(12, 4)(h)
    assert c.shape == (5, 4) and torch.allclose(c.sum(dim=1), torch.ones(5), atol=1e-6)
    head = InstanceHead(12, 7)
    assert [m.out_features for m in head.modules() if isinstance(m, torch.nn.Linear)] == [12, 7]
