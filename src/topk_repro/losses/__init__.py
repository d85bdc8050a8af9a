"""Losses of the framework; `LOSSES` is the one place where they are registered.

A loss is one module with a builder `(cfg, data: LossData) -> (criterion, crop_transform)` plus
one config in `configs/loss/` whose `name` is its key here.  `crop_transform` maps a test crop's
logits to the scores averaged over crops (the paper: softmax for probabilistic losses, raw
scores for margin losses).  What a loss needs from the data (the class count, the training
labels' class counts) comes in `LossData`, from the engine: no loss reads the data set.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import nn

from topk_repro.losses import cross_entropy, gce, lml, noised_topk, topk_svm, truncated_entropy


@dataclass(frozen=True)
class LossData:
    num_classes: int
    class_counts: np.ndarray  # (C,) counts of the (noisy) training labels


LOSSES: dict[str, Callable] = {
    "ce": cross_entropy.build,
    "smooth_topk_svm": topk_svm.build_smooth,
    "hard_topk_svm": topk_svm.build_hard,
    "truncated_topk_entropy": truncated_entropy.build,
    "lml": lml.build,
    "noised_topk": noised_topk.build,
    "gce": gce.build,
}


def build_criterion(cfg, data: LossData) -> tuple[nn.Module, Callable]:
    """The loss module named by `cfg.name` (the `loss` config group) and its crop transform."""
    if cfg.name not in LOSSES:
        raise ValueError(f"loss.name must be one of {', '.join(LOSSES)}, got {cfg.name!r}")
    return LOSSES[cfg.name](cfg, data)
