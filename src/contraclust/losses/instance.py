"""Instance-level contrast: NT-Xent over two views."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(view_a: torch.Tensor, view_b: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent (CC eq. 2, as the official ``InstanceLoss``): mean over the 2N rows of
    -log( exp(s_i,twin / t) / sum_{k != i} exp(s_ik / t) ), with s the dot product of the rows.

    Rows are used as given (CC's instance embeddings are already unit norm; the cluster loss passes
    L2-normalised columns). The self term is excluded, so each row has 1 positive and 2N-2 negatives.
    [paper != code] The paper's eq. 2 keeps the self term in the denominator; the code, followed here,
    does not. Inputs of shape (..., N, D) are independent problems, one loss each (a scalar for (N, D)).
    """
    n = view_a.shape[-2]
    z = torch.cat([view_a, view_b], dim=-2)
    logits = (z @ z.transpose(-1, -2)) / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    twins = (torch.arange(2 * n, device=z.device) + n) % (2 * n)
    if logits.ndim == 2:
        return F.cross_entropy(logits, twins)
    rows = F.cross_entropy(logits.reshape(-1, 2 * n), twins.repeat(logits[..., 0, 0].numel()), reduction="none")
    return rows.reshape(logits.shape[:-1]).mean(-1)
