"""The self-labelling stage: any trained method's network, trained on its own confident predictions.

Not a method of its own but a stage any run may end with (``--then self-label``; ``run/stages.py`` builds
it): SCAN's self-labelling step and TCL's boosting (spec ``cc_c3_tcl.md`` section 3, item 5). The trainer
hands it the clean view of each sample (``clean_first_view``) and a strong view of the same sample
(``augment.strong_ops``, cutout; stronger noise and dropout for vectors). Pseudo-labels come from the
clean view with the network in training mode, as SCAN's (TCL reads them in eval mode; there the strong
views alone move the BatchNorm statistics, and a stage that labelled nothing still cost MNIST-5k 0.03 NMI,
measured); the loss is ``losses.self_labelling_loss``. The
whole read-out path trains (SCAN's and TCL's self-labelling update backbone and head alike), the cluster
head included (C3 freezes it; here it is what learns); what the read-out does not use (the instance head)
is frozen. Its weights are the wrapped method's, under the
same names, so a run that ends with this stage is read out, predicted and resumed as its method's.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from contraclust.config import SelfLabelConfig
from contraclust.losses import self_labelling_loss
from contraclust.methods.base import ClusteringMethod


class SelfLabel(nn.Module):
    """``method`` trained by self-labelling with ``options``."""

    clean_first_view: ClassVar[bool] = True  # the trainer's first view is the un-augmented sample
    has_instance_loss: ClassVar[bool] = False

    def __init__(self, method: ClusteringMethod, options: SelfLabelConfig, sample_shape: tuple[int, ...]):
        super().__init__()
        self.method = method
        self.options = options
        self.name = method.name
        _train_only_the_read_out_path(method, sample_shape)

    @property
    def backbone(self) -> nn.Module:
        return self.method.backbone

    @property
    def n_clusters(self) -> int:
        return self.method.n_clusters

    def forward(self, clean: torch.Tensor, strong: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            targets = self.method.cluster_probabilities(clean)
        return {"clean": targets, "strong": self.method.cluster_probabilities(strong)}

    def loss(self, outputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        opts = self.options
        loss, selected = self_labelling_loss(outputs["clean"], outputs["strong"], opts.threshold,
                                             opts.per_cluster_share, opts.balanced)
        return loss, {"self_labelling": loss, "pseudo_labelled": selected}

    def instance_loss(self, outputs):
        return self.method.instance_loss(outputs)

    def cluster_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return self.method.cluster_probabilities(x)

    def readout(self, probabilities: torch.Tensor) -> torch.Tensor:
        return self.method.readout(probabilities)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.method.embed(x)

    def load_initial_state(self, state: dict[str, torch.Tensor]) -> tuple[int, int]:
        return self.method.load_initial_state(state)

    def state_dict(self, *args, **kwargs):
        return self.method.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.method.load_state_dict(state_dict, strict=strict, assign=assign)


def _train_only_the_read_out_path(method: ClusteringMethod, sample_shape: tuple[int, ...]) -> None:
    """Every parameter the read-out uses trains (C3's frozen cluster head included); the others (the instance
    head) are frozen, as DDP must know before it wraps the model. Found by one backward pass on zeros."""
    method.requires_grad_(True)
    was_training = method.training
    method.eval()
    method.cluster_probabilities(torch.zeros(2, *sample_shape)).sum().backward()
    for parameter in method.parameters():
        parameter.requires_grad_(parameter.grad is not None)
        parameter.grad = None
    method.train(was_training)
