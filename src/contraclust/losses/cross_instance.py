"""C3's cross-instance loss (Sadeghi et al. 2022), spec ``cc_c3_tcl.md`` section 2.3."""
from __future__ import annotations

import torch


def cross_instance_loss(view_a: torch.Tensor, view_b: torch.Tensor, zeta: float = 0.6, temperature: float = 1.0,
                        negative_weights: torch.Tensor | None = None) -> torch.Tensor:
    """L_C3 = (1/N) sum_{i=1}^{2N} -log( sum_{j in P(i)} exp(s_ij/t) / sum_j exp(s_ij/t) ).

    s is the cosine similarity of the unit-norm rows of Z = [z_a; z_b]. P(i) holds i itself, its
    twin, and every row with s_ij > zeta (the official mask ``S + 2 * (I + twin diagonals) > zeta``).
    The self term stays in both sums and the reduction divides by N, not 2N, as the official code.
    No temperature by default (t = 1). The positive set is selected without gradient.

    ``negative_weights`` (2N x 2N, default all ones) multiplies exp(s_ij/t) of non-positive pairs in
    the denominator. Any weighting other than ones is our own design, not the released C3 loss
    (the paper's BMVC weighting is unpublished; spec 2.3).
    """
    n = view_a.shape[0]
    z = torch.cat([view_a, view_b], dim=0)
    similarity = z @ z.T
    eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    twins = eye.roll(n, dims=1)
    with torch.no_grad():
        positive = (similarity > zeta) | eye | twins
    logits = similarity / temperature
    if negative_weights is not None:
        logits = logits + torch.where(positive, torch.zeros_like(logits), torch.log(negative_weights))
    log_denominator = torch.logsumexp(logits, dim=1)
    log_numerator = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
    return (log_denominator - log_numerator).sum() / n
