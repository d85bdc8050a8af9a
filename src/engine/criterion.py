"""Losses of the framework; `build_criterion` is the one place where they are registered."""

from collections.abc import Callable

import torch
from torch import nn

from smooth_topk import HardTopkSVM, SmoothTopkSVM


class CrossEntropy(nn.CrossEntropyLoss):
    """Cross-entropy computed in float32 whatever the autocast dtype of the logits."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return super().forward(logits.float(), labels)


def build_criterion(cfg, num_classes: int) -> tuple[nn.Module, Callable]:
    """The loss module and how its outputs are averaged over test crops.

    The paper averages softmax probabilities for cross-entropy and raw scores for the SVM losses.
    """
    if cfg.name == "ce":
        return CrossEntropy(), lambda logits: torch.softmax(logits.float(), dim=-1)
    if cfg.k >= num_classes:
        raise ValueError(
            f"loss.k must be smaller than the number of classes ({num_classes}), got {cfg.k}"
        )
    if cfg.name == "smooth_topk_svm":
        return SmoothTopkSVM(k=cfg.k, tau=cfg.tau, alpha=cfg.alpha), lambda logits: logits.float()
    if cfg.name == "hard_topk_svm":
        return HardTopkSVM(k=cfg.k, alpha=cfg.alpha), lambda logits: logits.float()
    raise ValueError(
        f"loss.name must be one of ce, smooth_topk_svm, hard_topk_svm, got {cfg.name!r}"
    )
