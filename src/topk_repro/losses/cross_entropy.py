"""Cross-entropy (`loss=ce`), the paper's baseline, with PyTorch's optional label smoothing
(`loss=ce_label_smoothing`, Szegedy et al. 2016)."""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from topk_repro.config.components import LossSettings


class CrossEntropy(nn.CrossEntropyLoss):
    """Cross-entropy computed in float32 whatever the autocast dtype of the logits."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return super().forward(logits.float(), labels)


def average_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Test-crop scores of a probabilistic loss: softmax, averaged by the caller (the paper)."""
    return torch.softmax(logits.float(), dim=-1)


@dataclass
class Settings(LossSettings):
    label_smoothing: float


def label(values: Mapping) -> str:
    smoothing = values.get("label_smoothing")
    return f"CE ls={smoothing:g}" if smoothing else "CE"


def check(cfg, num_classes: int) -> None:
    smoothing = float(cfg.label_smoothing)
    if not (math.isfinite(smoothing) and 0.0 <= smoothing <= 1.0):
        raise ValueError(f"loss.label_smoothing must be in [0, 1], got {smoothing}")


def build(cfg, data):
    """CrossEntropy (label smoothing from `loss.label_smoothing`) and its test-crop
    transform."""
    return CrossEntropy(label_smoothing=float(cfg.label_smoothing)), average_probabilities
