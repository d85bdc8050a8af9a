"""Cross-entropy (`loss=ce`), the paper's baseline."""

import torch
from torch import nn


class CrossEntropy(nn.CrossEntropyLoss):
    """Cross-entropy computed in float32 whatever the autocast dtype of the logits."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return super().forward(logits.float(), labels)


def average_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Test-crop scores of a probabilistic loss: softmax, averaged by the caller (the paper)."""
    return torch.softmax(logits.float(), dim=-1)


def build(cfg, num_classes: int):
    """CrossEntropy and its test-crop transform."""
    return CrossEntropy(), average_probabilities
