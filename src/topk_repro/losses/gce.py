r"""Generalised cross-entropy (`loss=gce`; Zhang and Sabuncu, NeurIPS 2018):

    L(s, y) = (1 - p_y^q) / q,   p = softmax(s),   0 < q <= 1,

between cross-entropy (q -> 0) and the noise-robust mean absolute error (q = 1).
"""

import math

import torch
from torch import nn

from topk_repro.losses.cross_entropy import average_probabilities


def generalised_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, q: float) -> torch.Tensor:
    """Batch mean of the loss for (B, C) scores (computed in float32) and (B,) labels."""
    log_p = torch.log_softmax(logits.float(), dim=1).gather(1, labels[:, None]).squeeze(1)
    return (-torch.expm1(q * log_p) / q).mean()  # 1 - p^q without cancellation for small q


class GeneralisedCrossEntropy(nn.Module):
    def __init__(self, q: float):
        super().__init__()
        self.q = q

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return generalised_cross_entropy(logits, labels, self.q)


def build(cfg, data):
    q = cfg.q
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not (0 < q <= 1):
        raise ValueError(f"loss.q must be in (0, 1], got {q!r}")
    if not math.isfinite(q):
        raise ValueError(f"loss.q must be finite, got {q!r}")
    return GeneralisedCrossEntropy(float(q)), average_probabilities
