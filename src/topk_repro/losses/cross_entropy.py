"""Cross-entropy (`loss=ce`), the paper's baseline, with PyTorch's optional label smoothing
(`loss=ce_label_smoothing`, Szegedy et al. 2016)."""

import math

import torch
from torch import nn


class CrossEntropy(nn.CrossEntropyLoss):
    """Cross-entropy computed in float32 whatever the autocast dtype of the logits."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return super().forward(logits.float(), labels)


def average_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Test-crop scores of a probabilistic loss: softmax, averaged by the caller (the paper)."""
    return torch.softmax(logits.float(), dim=-1)


def build(cfg, data):
    """CrossEntropy (label smoothing from `loss.label_smoothing`, default 0) and its test-crop
    transform."""
    smoothing = float(cfg.get("label_smoothing", 0.0))
    if not (math.isfinite(smoothing) and 0.0 <= smoothing <= 1.0):
        raise ValueError(f"loss.label_smoothing must be in [0, 1], got {smoothing}")
    return CrossEntropy(label_smoothing=smoothing), average_probabilities
