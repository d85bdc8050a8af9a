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
    if cfg.name not in ("smooth_topk_svm", "hard_topk_svm"):
        raise ValueError(
            f"loss.name must be one of ce, smooth_topk_svm, hard_topk_svm, got {cfg.name!r}"
        )
    if cfg.k >= num_classes:  # the library can check this only against the scores
        raise ValueError(
            f"loss.k must be smaller than the number of classes ({num_classes}), got {cfg.k}"
        )
    try:  # the library validates k, tau and alpha; its messages get the config's key names
        if cfg.name == "smooth_topk_svm":
            criterion = SmoothTopkSVM(k=cfg.k, tau=cfg.tau, alpha=cfg.alpha)
        else:
            criterion = HardTopkSVM(k=cfg.k, alpha=cfg.alpha)
    except ValueError as error:
        raise ValueError(f"loss.{error}") from None
    return criterion, lambda logits: logits.float()
