"""The smooth top-k SVM (`loss=smooth_topk_svm`) and its hard hinge (`loss=hard_topk_svm`),
from the `smooth_topk` library."""

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from smooth_topk import HardTopkSVM, SmoothTopkSVM
from topk_repro.components import LossSettings


def raw_scores(logits: torch.Tensor) -> torch.Tensor:
    """Test-crop scores of a margin loss: the raw scores, averaged by the caller (the paper)."""
    return logits.float()


def check_k(cfg, num_classes: int) -> int:
    """loss.k as an int in [1, num_classes) (ValueError naming the key)."""
    k = cfg.k
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k < num_classes:
        raise ValueError(f"loss.k must be an int in [1, {num_classes - 1}], got {k!r}")
    return k


def _checked(make, cfg, num_classes: int):
    check_k(cfg, num_classes)
    try:  # the library validates tau and alpha; its messages get the config's key names
        return make(), raw_scores
    except ValueError as error:
        raise ValueError(f"loss.{error}") from None


@dataclass
class SmoothSettings(LossSettings):
    k: int
    tau: float
    alpha: float


@dataclass
class HardSettings(LossSettings):
    k: int
    alpha: float


def smooth_label(values: Mapping) -> str:
    return f"SVM k={int(values['k'])}" + (f" tau={values['tau']:g}" if "tau" in values else "")


def hard_label(values: Mapping) -> str:
    return f"hard top-{int(values['k'])}"


def build_smooth(cfg, data):
    return _checked(
        lambda: SmoothTopkSVM(k=cfg.k, tau=cfg.tau, alpha=cfg.alpha), cfg, data.num_classes
    )


def build_hard(cfg, data):
    return _checked(lambda: HardTopkSVM(k=cfg.k, alpha=cfg.alpha), cfg, data.num_classes)
