"""Losses of the framework; `LOSSES` is the one place where they are registered.

A loss is one module with a builder `(cfg, data: LossData) -> (criterion, crop_transform)`, the
schema of its config (a dataclass extending `LossSettings`), its check and its table label, plus
one config in `configs/loss/` whose `name` is its key here.  `crop_transform` maps a test
crop's logits to the scores averaged over crops (the paper: softmax for probabilistic losses,
raw scores for margin losses).  What a loss needs from the data (the class count, the training
labels' class counts) comes in `LossData`, from the engine: no loss reads the data set.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import nn

from topk_repro.config.components import Component, LossSettings, Registry
from topk_repro.losses import cross_entropy, gce, lml, noised_topk, topk_svm, truncated_entropy


@dataclass(frozen=True)
class LossData:
    num_classes: int
    class_counts: np.ndarray  # (C,) counts of the (noisy) training labels


LOSSES = Registry(
    "loss",
    LossSettings,
    {
        "ce": Component(
            cross_entropy.build, cross_entropy.Settings, cross_entropy.check, cross_entropy.label
        ),
        "smooth_topk_svm": Component(
            topk_svm.build_smooth,
            topk_svm.SmoothSettings,
            topk_svm.check_smooth,
            topk_svm.smooth_label,
        ),
        "hard_topk_svm": Component(
            topk_svm.build_hard, topk_svm.HardSettings, topk_svm.check_hard, topk_svm.hard_label
        ),
        "truncated_topk_entropy": Component(
            truncated_entropy.build,
            truncated_entropy.Settings,
            truncated_entropy.check,
            truncated_entropy.label,
        ),
        "lml": Component(lml.build, lml.Settings, lml.check, lml.label),
        "noised_topk": Component(
            noised_topk.build, noised_topk.Settings, noised_topk.check, noised_topk.label
        ),
        "gce": Component(gce.build, gce.Settings, gce.check, gce.label),
    },
)


def build_criterion(cfg, data: LossData) -> tuple[nn.Module, Callable]:
    """The loss module named by `cfg.name` (the `loss` config group) and its crop transform,
    after the loss's check against the data's class count."""
    LOSSES.check(cfg, data.num_classes)
    return LOSSES.look_up(cfg.name).build(cfg, data)


def implementation_of(criterion: nn.Module, device) -> str | None:
    """Which implementation computes `criterion` on `device`, for a loss with several (it
    says so through an `implementation(device)` method, as smooth_topk's modules do); None
    for a loss with one."""
    ask = getattr(criterion, "implementation", None)
    return ask(device) if callable(ask) else None
