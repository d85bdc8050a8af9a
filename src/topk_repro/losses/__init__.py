"""Losses of the framework; `LOSSES` is the one place where they are registered.

A loss is one module with a builder `(cfg, num_classes) -> (criterion, crop_transform)` plus one
config in `configs/loss/` whose `name` is its key here.  `crop_transform` maps a test crop's
logits to the scores averaged over crops (the paper: softmax for CE, raw scores for the SVMs).
"""

from collections.abc import Callable

from torch import nn

from topk_repro.losses import cross_entropy, topk_svm

LOSSES: dict[str, Callable] = {
    "ce": cross_entropy.build,
    "smooth_topk_svm": topk_svm.build_smooth,
    "hard_topk_svm": topk_svm.build_hard,
}


def build_criterion(cfg, num_classes: int) -> tuple[nn.Module, Callable]:
    """The loss module named by `cfg.name` (the `loss` config group) and its crop transform."""
    if cfg.name not in LOSSES:
        raise ValueError(f"loss.name must be one of {', '.join(LOSSES)}, got {cfg.name!r}")
    return LOSSES[cfg.name](cfg, num_classes)
