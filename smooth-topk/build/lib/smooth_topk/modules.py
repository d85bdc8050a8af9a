"""`torch.nn` loss modules wrapping `smooth_topk.functional`.

They hold only hyper-parameters (no buffers, no per-class state), so `.to(device)`, `.cuda()`,
pickling and `copy.deepcopy` behave like any `torch.nn` loss.
"""

import torch
from torch import nn

from smooth_topk.functional import (
    _check_hyperparameters,
    hard_topk_svm,
    smooth_topk_svm,
)


class SmoothTopkSVM(nn.Module):
    """Smooth top-k SVM loss L_{k,tau}; see `smooth_topk.functional.smooth_topk_svm`."""

    def __init__(self, k: int = 5, tau: float = 1.0, alpha: float = 1.0, reduction: str = "mean"):
        super().__init__()
        _check_hyperparameters(k, tau, alpha, reduction)
        self.k, self.tau, self.alpha, self.reduction = k, float(tau), float(alpha), reduction

    def forward(
        self, logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        return smooth_topk_svm(
            logits, labels, self.k, self.tau, self.alpha, self.reduction, weight=weight
        )

    def extra_repr(self) -> str:
        return f"k={self.k}, tau={self.tau}, alpha={self.alpha}, reduction={self.reduction!r}"


class HardTopkSVM(nn.Module):
    """Hard top-k SVM hinge; see `smooth_topk.functional.hard_topk_svm`."""

    def __init__(self, k: int = 5, alpha: float = 1.0, reduction: str = "mean"):
        super().__init__()
        _check_hyperparameters(k, None, alpha, reduction)
        self.k, self.alpha, self.reduction = k, float(alpha), reduction

    def forward(
        self, logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        return hard_topk_svm(logits, labels, self.k, self.alpha, self.reduction, weight=weight)

    def extra_repr(self) -> str:
        return f"k={self.k}, alpha={self.alpha}, reduction={self.reduction!r}"
