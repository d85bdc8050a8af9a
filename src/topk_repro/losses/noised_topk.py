r"""The noised top-k hinge (`loss=noised_topk`; Garcin, Servajean, Joly, Salmon, ICML 2022):

    L(s, y) = max(0, alpha_y + t_eps(s) - s_y),   t_eps(s) = E_Z[(s + eps Z)_[k+1]],

(s)_[k+1] the (k+1)-th largest score and Z standard Gaussian noise, estimated with `n_samples`
draws.  The gradient of t_eps is the perturbed optimiser's: the average over the same draws of
the one-hot vector of the class ranked (k+1)-th.  alpha_y = alpha for every class, or with
`loss.imbalanced=true` margins proportional to n_y^(-1/4) (n_y the training-label count of class
y, passed in by the engine), scaled so that the rarest class gets alpha.
The noise comes from torch's global generator, which the engine seeds per epoch.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from topk_repro.config.components import LossSettings
from topk_repro.losses.topk_svm import check_k, raw_scores


class _PerturbedRank(torch.autograd.Function):
    """E_Z[(s + eps Z)_[rank]] (B,) and its perturbed-optimiser gradient."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, rank: int, eps: float, n_samples: int):
        noise = torch.randn((n_samples, *scores.shape), device=scores.device, dtype=scores.dtype)
        values, indices = (scores + eps * noise).topk(rank, dim=2)
        hits = torch.zeros_like(noise).scatter_(2, indices[..., -1:], 1.0)
        ctx.save_for_backward(hits.mean(0))
        return values[..., -1].mean(0)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        (direction,) = ctx.saved_tensors
        return grad[:, None] * direction, None, None, None


def perturbed_rank(scores: torch.Tensor, rank: int, eps: float, n_samples: int) -> torch.Tensor:
    return _PerturbedRank.apply(scores, rank, eps, n_samples)


class NoisedTopk(nn.Module):
    """The loss with per-class margins (a (C,) buffer: `.to(device)` moves it)."""

    def __init__(self, k: int, margins: torch.Tensor, eps: float, n_samples: int):
        super().__init__()
        self.k, self.eps, self.n_samples = k, eps, n_samples
        self.register_buffer("margins", margins)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        scores = logits.float()
        threshold = perturbed_rank(scores, self.k + 1, self.eps, self.n_samples)
        true = scores.gather(1, labels[:, None]).squeeze(1)
        margin = self.margins.to(scores.device)[labels]
        return torch.relu(margin + threshold - true).mean()


def imbalanced_margins(alpha: float, class_counts) -> torch.Tensor:
    """alpha * (n_y / n_min)^(-1/4): proportional to n_y^(-1/4), alpha for the rarest class."""
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.ndim != 1 or (counts <= 0).any():
        empty = np.flatnonzero(counts <= 0).tolist()
        raise ValueError(
            "loss.imbalanced needs a positive training-label count for every class; classes "
            f"{empty[:10]}{' ...' if len(empty) > 10 else ''} have none"
        )
    return torch.tensor(alpha * (counts / counts.min()) ** -0.25, dtype=torch.float32)


@dataclass
class Settings(LossSettings):
    k: int
    alpha: float
    eps: float
    n_samples: int
    imbalanced: bool


def label(values: Mapping) -> str:
    eps = f" eps={values['eps']:g}" if "eps" in values else ""
    imbalanced = " imbalanced" if values.get("imbalanced") is True else ""
    return f"noised k={int(values['k'])}{eps}{imbalanced}"


def check(cfg, num_classes: int) -> None:
    check_k(cfg, num_classes)  # k < C, so the (k+1)-th score exists
    alpha, eps, n_samples = cfg.alpha, cfg.eps, cfg.n_samples
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0:
        raise ValueError(f"loss.alpha must be a number >= 0, got {alpha!r}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ValueError(f"loss.eps must be a number > 0, got {eps!r}")
    if not (math.isfinite(alpha) and math.isfinite(eps)):
        raise ValueError("loss.alpha and loss.eps must be finite")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"loss.n_samples must be an int >= 1, got {n_samples!r}")


def build(cfg, data):
    if cfg.imbalanced:
        margins = imbalanced_margins(float(cfg.alpha), data.class_counts)
    else:
        margins = torch.full((data.num_classes,), float(cfg.alpha))
    return NoisedTopk(cfg.k, margins, float(cfg.eps), cfg.n_samples), raw_scores
