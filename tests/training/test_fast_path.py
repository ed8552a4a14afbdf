"""The trainer's fast path (batched on-device views, vectorised losses) against a plain reference path
(one image at a time through the same random parameters, losses written out row by row)."""
import math

import torch

from contraclust.presets import build_config
from contraclust.training import Trainer
from contraclust.data import ImageSet


def plain_nt_xent(a, b, t):
    z = torch.cat([a, b])
    n2 = len(z)
    total = 0.0
    for i in range(n2):
        twin = (i + n2 // 2) % n2
        logits = [float(z[i] @ z[j]) / t for j in range(n2)]
        den = sum(math.exp(logits[j]) for j in range(n2) if j != i)
        total += -(logits[twin] - math.log(den))
    return total / n2


def plain_cc_loss(out, opts):
    ca, cb = out["c_a"], out["c_b"]
    cols_a = ca.T / ca.T.norm(dim=1, keepdim=True)
    cols_b = cb.T / cb.T.norm(dim=1, keepdim=True)
    entropy = 0.0
    for c in (ca, cb):
        p = c.sum(0) / c.sum()
        entropy += math.log(c.shape[1]) + float((p * p.log()).sum().detach())
    return (plain_nt_xent(out["z_a"], out["z_b"], opts.tau_instance)
            + plain_nt_xent(cols_a, cols_b, opts.tau_cluster) + opts.entropy_weight * entropy)


def test_fast_and_reference_paths_give_the_same_loss():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (24, 3, 32, 32), generator=g, dtype=torch.uint8)
    config = build_config("cc", "cifar10-fast", n_clusters=5, epochs=1, batch_size=24, seed=0,
                          overrides=["model.backbone=resnet18", "model.width=8", "augment.blur_p=0.5",
                                     "train.progress=false"])
    trainer = Trainer(config, ImageSet(images), None, "cpu")
    augment = trainer.augment
    params = [augment.sample(24, 32, 32, torch.Generator().manual_seed(s), torch.device("cpu")) for s in (1, 2)]

    fast_views = [augment.apply(images, p) for p in params]
    fast_loss, _ = trainer.method.loss(trainer.method(*fast_views))

    reference_views = [torch.cat([augment.apply(images[i: i + 1], p.index(slice(i, i + 1))) for i in range(24)])
                       for p in params]
    with torch.no_grad():
        reference_loss = plain_cc_loss(trainer.method(*reference_views), config.method_options)
    assert abs(fast_loss.item() - reference_loss) < 1e-4
