"""Drop-in classes for users of the paper's reference code (`from topk.svm import ...`).

Change `from topk.svm import SmoothTop1SVM` to `from smooth_topk.compat import SmoothTop1SVM`:
the class names, constructor signatures and conventions are the reference API's.  Each loss
returns the batch mean; the scores enter divided by k tau and the margin divided by tau, and
the result is multiplied by tau, which is `smooth_topk.functional.smooth_topk_svm`'s definition,
so the values agree with the reference wherever it computes the smooth loss exactly.  The
differences: this loss is exact everywhere (no switch to the hard loss for rows far from the
decision boundary, no approximate backward), any k < n_classes works, and `.to(device)` moves
nothing because there is no per-class state.
"""

import torch
from torch import nn

from smooth_topk.functional import hard_topk_svm, smooth_topk_svm


def _margin(alpha: float | None) -> float:
    return 1.0 if alpha is None else float(alpha)


class _ReferenceLoss(nn.Module):
    """Shared constructor checks: n_classes and k as the reference takes them."""

    def __init__(self, n_classes: int, alpha: float | None, k: int):
        super().__init__()
        if not isinstance(n_classes, int) or isinstance(n_classes, bool) or n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
        if not 1 <= k < n_classes:
            raise ValueError(f"k must lie in [1, n_classes - 1] = [1, {n_classes - 1}], got {k}")
        self.n_classes, self.alpha, self.k = n_classes, _margin(alpha), k

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.n_classes:
            raise ValueError(
                f"scores must have shape (batch, n_classes={self.n_classes}), got {tuple(x.shape)}"
            )


class SmoothTopkSVM(_ReferenceLoss):
    """The smooth top-k SVM loss L_{k,tau}, batch mean (reference signature)."""

    def __init__(self, n_classes: int, alpha: float | None = None, tau: float = 1.0, k: int = 5):
        super().__init__(n_classes, alpha, k)
        self.tau = float(tau)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return smooth_topk_svm(x, y, self.k, self.tau, self.alpha)


class SmoothTop1SVM(SmoothTopkSVM):
    """The smooth top-1 SVM loss L_{1,tau}, batch mean (reference signature)."""

    def __init__(self, n_classes: int, alpha: float | None = None, tau: float = 1.0):
        super().__init__(n_classes, alpha, tau, k=1)


class MaxTopkSVM(_ReferenceLoss):
    """The hard top-k SVM hinge, batch mean (reference signature)."""

    def __init__(self, n_classes: int, alpha: float | None = None, k: int = 5):
        super().__init__(n_classes, alpha, k)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return hard_topk_svm(x, y, self.k, self.alpha)


class MaxTop1SVM(MaxTopkSVM):
    """The hard top-1 SVM hinge max(0, alpha + max_{j != y} s_j - s_y), batch mean."""

    def __init__(self, n_classes: int, alpha: float | None = None):
        super().__init__(n_classes, alpha, k=1)
