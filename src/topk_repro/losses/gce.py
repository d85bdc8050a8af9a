r"""Generalised cross-entropy (`loss=gce`; Zhang and Sabuncu, NeurIPS 2018):

    L(s, y) = (1 - p_y^q) / q,   p = softmax(s),   0 < q <= 1,

between cross-entropy (q -> 0) and the noise-robust mean absolute error (q = 1).
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from topk_repro.config.components import LossSettings
from topk_repro.losses.cross_entropy import average_probabilities
from topk_repro.losses.function_loss import FunctionLoss


def generalised_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, q: float) -> torch.Tensor:
    """Batch mean of the loss for (B, C) scores (computed in float32) and (B,) labels."""
    log_p = torch.log_softmax(logits.float(), dim=1).gather(1, labels[:, None]).squeeze(1)
    return (-torch.expm1(q * log_p) / q).mean()  # 1 - p^q without cancellation for small q


@dataclass
class Settings(LossSettings):
    q: float


def label(values: Mapping) -> str:
    return "GCE" + (f" q={values['q']:g}" if "q" in values else "")


def check(cfg, num_classes: int) -> None:
    q = cfg.q
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not (0 < q <= 1):
        raise ValueError(f"loss.q must be in (0, 1], got {q!r}")
    if not math.isfinite(q):
        raise ValueError(f"loss.q must be finite, got {q!r}")


def build(cfg, data):
    return FunctionLoss(generalised_cross_entropy, q=float(cfg.q)), average_probabilities
