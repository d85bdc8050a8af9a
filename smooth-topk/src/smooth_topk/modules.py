"""`torch.nn` loss modules wrapping `smooth_topk.functional`.

Hyper-parameters are plain attributes; a per-class `weight` or per-class margin `alpha` is a
buffer, so `.to(device)`, `.cuda()`, pickling, `copy.deepcopy` and `state_dict` behave as for
`torch.nn.CrossEntropyLoss(weight=...)`.
"""

import torch
from torch import nn

from smooth_topk.checks import check_hyperparameters, check_nonnegative_vector
from smooth_topk.dispatch import implementation_in_use
from smooth_topk.functional import hard_topk_svm, smooth_topk_svm


class _TopkLoss(nn.Module):
    """Shared set-up: k, margin (scalar or per class), reduction, class weight, ignore_index."""

    def __init__(self, k, tau, alpha, reduction, weight, ignore_index):
        super().__init__()
        check_hyperparameters(k, tau, alpha, reduction)
        self.k, self.reduction, self.ignore_index = k, reduction, int(ignore_index)
        if isinstance(alpha, torch.Tensor):
            alpha = check_nonnegative_vector("alpha", alpha, None, "one margin per class")
            self.register_buffer("alpha", alpha.clone())
        else:
            self.alpha = float(alpha)
        if weight is not None:
            weight = check_nonnegative_vector("weight", weight, None, "one weight per class")
            weight = weight.clone()
        self.register_buffer("weight", weight)

    def _margin(self, logits: torch.Tensor, labels: torch.Tensor, alpha: torch.Tensor | None):
        """This call's margins: the per-sample `alpha` given, else the module's (per class:
        each sample gets its label's margin)."""
        if alpha is not None:
            return alpha
        if not isinstance(self.alpha, torch.Tensor):
            return self.alpha
        classes = self.alpha.shape[0]
        if logits.dim() != 2 or logits.shape[1] != classes:
            raise ValueError(
                f"alpha holds {classes} per-class margins but logits have shape "
                f"{tuple(logits.shape)}"
            )
        if not isinstance(labels, torch.Tensor):
            return self.alpha  # the functional reports the bad labels
        safe = labels.long().clamp(0, classes - 1)  # ignored labels; others are checked later
        return self.alpha[safe]

    def _options(self, logits, labels, sample_weight, alpha) -> dict:
        return {
            "alpha": self._margin(logits, labels, alpha),
            "reduction": self.reduction,
            "weight": self.weight,
            "sample_weight": sample_weight,
            "ignore_index": self.ignore_index,
        }

    def _repr_margin(self) -> str:
        if isinstance(self.alpha, torch.Tensor):
            return f"alpha=per-class({self.alpha.shape[0]})"
        return f"alpha={self.alpha}"


class SmoothTopkSVM(_TopkLoss):
    """Smooth top-k SVM loss L_{k,tau}; see `smooth_topk.functional.smooth_topk_svm`.

    `alpha` is a scalar or a (C,) tensor of per-class margins; `weight` (C,) weighs classes as
    in cross-entropy.  forward(logits, labels, sample_weight=None, alpha=None): `alpha` (B,)
    gives this call's per-sample margins instead of the module's.
    """

    def __init__(
        self,
        k: int = 5,
        tau: float = 1.0,
        alpha: float | torch.Tensor = 1.0,
        reduction: str = "mean",
        weight: torch.Tensor | None = None,
        ignore_index: int = -100,
    ):
        super().__init__(k, tau, alpha, reduction, weight, ignore_index)
        self.tau = float(tau)

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
        alpha: torch.Tensor | None = None,
    ) -> torch.Tensor:
        options = self._options(logits, labels, sample_weight, alpha)
        return smooth_topk_svm(logits, labels, self.k, self.tau, **options)

    def implementation(self, device: str | torch.device, dtype: torch.dtype = torch.float32) -> str:
        """Which implementation computes this loss for `dtype` scores on `device`: "triton",
        "cpu_kernel" or "pytorch" (for run records and logs; asking may build the CPU
        kernel)."""
        return implementation_in_use(device, self.k, dtype)

    def extra_repr(self) -> str:
        return f"k={self.k}, tau={self.tau}, {self._repr_margin()}, reduction={self.reduction!r}"


class HardTopkSVM(_TopkLoss):
    """Hard top-k SVM hinge; see `smooth_topk.functional.hard_topk_svm`.  Arguments as in
    `SmoothTopkSVM`, without tau."""

    def __init__(
        self,
        k: int = 5,
        alpha: float | torch.Tensor = 1.0,
        reduction: str = "mean",
        weight: torch.Tensor | None = None,
        ignore_index: int = -100,
    ):
        super().__init__(k, None, alpha, reduction, weight, ignore_index)

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
        alpha: torch.Tensor | None = None,
    ) -> torch.Tensor:
        options = self._options(logits, labels, sample_weight, alpha)
        return hard_topk_svm(logits, labels, self.k, **options)

    def extra_repr(self) -> str:
        return f"k={self.k}, {self._repr_margin()}, reduction={self.reduction!r}"
