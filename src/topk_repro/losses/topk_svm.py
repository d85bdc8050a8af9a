"""The smooth top-k SVM (`loss=smooth_topk_svm`) and its hard hinge (`loss=hard_topk_svm`),
from the `smooth_topk` library."""

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from smooth_topk import HardTopkSVM, SmoothTopkSVM
from smooth_topk.checks import check_hyperparameters
from topk_repro.config.components import LossSettings


def raw_scores(logits: torch.Tensor) -> torch.Tensor:
    """Test-crop scores of a margin loss: the raw scores, averaged by the caller (the paper)."""
    return logits.float()


def check_k(cfg, num_classes: int) -> int:
    """loss.k as an int in [1, num_classes) (ValueError naming the key)."""
    k = cfg.k
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k < num_classes:
        raise ValueError(f"loss.k must be an int in [1, {num_classes - 1}], got {k!r}")
    return k


def check_smooth(cfg, num_classes: int) -> None:
    check_k(cfg, num_classes)
    _library_check(cfg.k, cfg.tau, cfg.alpha)


def check_hard(cfg, num_classes: int) -> None:
    check_k(cfg, num_classes)
    _library_check(cfg.k, None, cfg.alpha)


def _library_check(k, tau, alpha) -> None:
    """The library's own check of tau and alpha, its messages under the config's key names."""
    try:
        check_hyperparameters(k, tau, alpha, "mean")
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
    return SmoothTopkSVM(k=cfg.k, tau=cfg.tau, alpha=cfg.alpha), raw_scores


def build_hard(cfg, data):
    return HardTopkSVM(k=cfg.k, alpha=cfg.alpha), raw_scores
