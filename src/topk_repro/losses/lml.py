r"""The LML loss (`loss=lml`; Amos, Koltun, Kolter, "The Limited Multi-Label Projection Layer",
2019): project the scores onto the set of vectors in [0, 1]^C summing to k,

    p = sigmoid(s + nu),   nu such that sum_j p_j = k,

and take L(s, y) = -log p_y.  nu is found per row by bisection in float64, on a bracket where
the constraint's sign is known (sum_j sigmoid(s_j + nu) is increasing in nu, at most
C sigmoid(max s + nu) and at least C sigmoid(min s + nu)), to below float32 resolution.  Its
gradient comes from differentiating the constraint, not from the search:
d nu / d s_j = -p_j (1 - p_j) / sum_i p_i (1 - p_i).
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from topk_repro.config.components import LossSettings
from topk_repro.losses.cross_entropy import average_probabilities
from topk_repro.losses.function_loss import FunctionLoss
from topk_repro.losses.topk_svm import check_k

BISECTION_STEPS = 80  # halves a bracket of width up to 1e9 below 1e-14


class _Threshold(torch.autograd.Function):
    """nu(s) (B,) of float64 scores (B, C), with its implicit gradient."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, k: int) -> torch.Tensor:
        classes = scores.shape[1]
        centre = math.log(k / (classes - k))  # logit(k / C)
        low = centre - scores.amax(1)  # sum <= k here
        high = centre - scores.amin(1)  # sum >= k here
        for _ in range(BISECTION_STEPS):
            middle = (low + high) / 2
            above = torch.sigmoid(scores + middle[:, None]).sum(1) > k
            high = torch.where(above, middle, high)
            low = torch.where(above, low, middle)
        nu = (low + high) / 2
        ctx.save_for_backward(torch.sigmoid(scores + nu[:, None]))
        return nu

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_nu: torch.Tensor):
        (p,) = ctx.saved_tensors
        slope = p * (1 - p)
        return -grad_nu[:, None] * slope / slope.sum(1, keepdim=True), None


def lml_threshold(scores: torch.Tensor, k: int) -> torch.Tensor:
    """nu (B,) with sum_j sigmoid(s_j + nu) = k for each row of float64 scores (B, C)."""
    return _Threshold.apply(scores, k)


def lml_loss(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Batch mean of -log p_y, computed in float64 and returned in float32 (float64 input
    stays float64)."""
    scores = logits.double()
    nu = lml_threshold(scores, k)
    true = scores.gather(1, labels[:, None]).squeeze(1)
    loss = F.softplus(-(true + nu)).mean()  # -log sigmoid(s_y + nu)
    return loss if logits.dtype == torch.float64 else loss.float()


@dataclass
class Settings(LossSettings):
    k: int


def label(values: Mapping) -> str:
    return f"LML k={int(values['k'])}"


def check(cfg, num_classes: int) -> None:
    check_k(cfg, num_classes)


def build(cfg, data):
    return FunctionLoss(lml_loss, k=cfg.k), average_probabilities
