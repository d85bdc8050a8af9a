"""The smooth top-k SVM (`loss=smooth_topk_svm`) and its hard hinge (`loss=hard_topk_svm`),
from the `smooth_topk` library."""

import torch

from smooth_topk import HardTopkSVM, SmoothTopkSVM


def raw_scores(logits: torch.Tensor) -> torch.Tensor:
    """Test-crop scores of a margin loss: the raw scores, averaged by the caller (the paper)."""
    return logits.float()


def _checked(make, cfg, num_classes: int):
    if cfg.k >= num_classes:  # the library can check this only against the scores
        raise ValueError(
            f"loss.k must be smaller than the number of classes ({num_classes}), got {cfg.k}"
        )
    try:  # the library validates k, tau and alpha; its messages get the config's key names
        return make(), raw_scores
    except ValueError as error:
        raise ValueError(f"loss.{error}") from None


def build_smooth(cfg, num_classes: int):
    return _checked(lambda: SmoothTopkSVM(k=cfg.k, tau=cfg.tau, alpha=cfg.alpha), cfg, num_classes)


def build_hard(cfg, num_classes: int):
    return _checked(lambda: HardTopkSVM(k=cfg.k, alpha=cfg.alpha), cfg, num_classes)
