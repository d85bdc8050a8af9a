r"""Smooth and hard top-k SVM losses (Berrada, Zisserman, Kumar, ICLR 2018).

For scores s in R^C, label y, k in [1, C), temperature tau > 0 and margin alpha >= 0:

    L_{k,tau}(s, y) = tau log sum_{|A|=k} exp((alpha [y not in A] + mean_{j in A} s_j) / tau)
                    - tau log sum_{|A|=k, y in A} exp(mean_{j in A} s_j / tau)

With e_j = exp(s_j / (k tau)) and sigma_i the elementary symmetric polynomial of degree i over
the classes other than y, this is

    L = tau * log(1 + exp(alpha / tau) * sigma_k / (e_y * sigma_{k-1})).

k = 1 gives the smooth top-1 SVM, which is cross-entropy when alpha = 0 and tau = 1.  As
tau -> 0 the loss tends to the hard top-k hinge max(0, alpha + ((s_{-y})_[k] - s_y) / k),
where (s_{-y})_[k] is the k-th largest score among the classes other than y.

Evaluation is exact in value and gradient (no switch to the hard loss, no approximate
backward).  On the CPU with k <= 10, a compiled kernel (`cpu_kernel.py`) evaluates the
power-sum path below in one fused pass per row, with the same proof of accuracy; the rows that
proof rejects it computes by exact sequential products (in log space when needed).  Rows with
non-finite scores, and every call the kernel does not serve (GPU, k > 10, no compiler), take
the PyTorch paths.  There, k = 1 is tau * softplus(logsumexp_{j != y}((s_j - s_y + alpha) / tau)),
which equals tau * cross_entropy((s + alpha [j != y]) / tau, y), and for k >= 2 each row takes
the first of up to three paths that can prove its accuracy:
1. k <= 10: float64 power sums with a per-row error bound (`power_sums.py`);
2. a rescaled linear-space product tree with a hand-written backward (`linear_tree.py`,
   O(B C k), sums of positive terms only), for the rows the first path rejects and for k > 10;
3. float64 log space (`log_space.py`), for the rare rows whose coefficients the tree cannot
   represent (huge score spreads with a tiny tau).
float16 / bfloat16 input is computed in float32; float64 stays float64.
"""

import math

import torch

from smooth_topk import cpu_kernel, power_sums
from smooth_topk.linear_tree import SmoothTopkLinearTree
from smooth_topk.log_space import log_esp
from smooth_topk.softplus import softplus

__all__ = ["smooth_topk_svm", "hard_topk_svm", "log_esp"]

REDUCTIONS = ("mean", "sum", "none")


def _check_hyperparameters(k: int, tau: float | None, alpha: float, reduction: str) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    if tau is not None and not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a finite number > 0, got {tau!r}")
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_inputs(
    logits: torch.Tensor, labels: torch.Tensor, k: int, weight: torch.Tensor | None
) -> torch.Tensor:
    """Validate shapes, dtypes and ranges; return the scores in their compute dtype."""
    if not isinstance(logits, torch.Tensor) or not torch.is_floating_point(logits):
        raise ValueError("logits must be a floating-point tensor of shape (batch, classes)")
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (batch, classes), got {tuple(logits.shape)}")
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int64, torch.int32):
        dtype = getattr(labels, "dtype", type(labels).__name__)
        raise ValueError(f"labels must be an int64 (or int32) tensor, got {dtype}")
    batch, classes = logits.shape
    if labels.shape != (batch,):
        raise ValueError(
            f"labels must have shape ({batch},) to match logits {tuple(logits.shape)}, "
            f"got {tuple(labels.shape)}"
        )
    if labels.device != logits.device:
        raise ValueError(f"labels are on {labels.device} but logits on {logits.device}")
    if k >= classes:
        raise ValueError(f"k must be smaller than the number of classes ({classes}), got {k}")
    if batch > 0:
        lowest, highest = (int(v) for v in torch.aminmax(labels))  # one pass over the labels
        if lowest < 0 or highest >= classes:
            raise ValueError(
                f"labels must lie in [0, {classes - 1}], got values in [{lowest}, {highest}]"
            )
    if weight is not None and (not isinstance(weight, torch.Tensor) or weight.shape != (batch,)):
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight)
        raise ValueError(f"weight must be a tensor of shape ({batch},), got {shape}")
    if logits.dtype in (torch.float16, torch.bfloat16):
        return logits.float()
    return logits


def _reduce(loss: torch.Tensor, weight: torch.Tensor | None, reduction: str) -> torch.Tensor:
    """Apply the per-sample weight, then reduce ("mean" divides by the batch size)."""
    if weight is not None:
        loss = loss * weight.to(loss.dtype)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _smooth_top1(scores: torch.Tensor, labels: torch.Tensor, tau: float, alpha: float):
    """L_{1,tau} = tau * softplus(z), z = logsumexp_{j != y}((s_j - s_y + alpha) / tau): the
    smooth top-1 SVM, which is tau * CE((s + alpha [j != y]) / tau, y).  Written this way, a
    small loss (the label far ahead) keeps its relative precision, which CE's logsumexp minus
    the true logit loses to cancellation in float32; the shift by the row maximum keeps the
    dominant terms' differences exact before the division by a small tau."""
    peak = scores.detach().amax(1, keepdim=True)
    true_logit = (scores.gather(1, labels[:, None]) - peak).squeeze(1) / tau
    logits = (scores - peak).add_(alpha).div_(tau)  # one buffer, updated in place
    logits = logits.scatter(1, labels[:, None], float("-inf"))
    return tau * softplus(torch.logsumexp(logits, 1) - true_logit)


def _smooth_topk_log_space(scores: torch.Tensor, labels: torch.Tensor, k, tau, alpha):
    """Per-row loss in log space: exact and safe for any scores (used as the fallback)."""
    masked = scores.scatter(1, labels[:, None], float("-inf"))
    peak = masked.detach().amax(1, keepdim=True)
    log_sigma = log_esp((masked - peak) / (k * tau), k)
    true_score = scores.gather(1, labels[:, None]).squeeze(1)
    z = alpha / tau + log_sigma[:, k] - log_sigma[:, k - 1]
    z = z + (peak.squeeze(1) - true_score) / (k * tau)
    return tau * softplus(z)


def _replace_unsafe_rows(loss, safe, scores, labels, recompute) -> torch.Tensor:
    """`loss` with the rows not marked safe recomputed by `recompute(scores, labels)`."""
    if bool(safe.all()):
        return loss
    rows = (~safe).nonzero().squeeze(1)
    return loss.index_copy(0, rows, recompute(scores[rows], labels[rows]).to(loss.dtype))


def _tree_then_log_space(scores, labels, k: int, tau: float, alpha: float) -> torch.Tensor:
    loss, safe = SmoothTopkLinearTree.apply(scores, labels, k, tau, alpha)
    return _replace_unsafe_rows(
        loss,
        safe,
        scores,
        labels,
        lambda s, y: _smooth_topk_log_space(s.double(), y, k, tau, alpha),
    )


def smooth_topk_svm(
    logits: torch.Tensor,
    labels: torch.Tensor,
    k: int = 5,
    tau: float = 1.0,
    alpha: float = 1.0,
    reduction: str = "mean",
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The smooth top-k SVM loss L_{k,tau} of (B, C) scores and (B,) labels.

    `weight` (B,) rescales each sample's loss; "mean" then divides by B.  Returns a float32
    scalar (float64 for float64 input), or (B,) with reduction="none".
    """
    _check_hyperparameters(k, tau, alpha, reduction)
    scores = _check_inputs(logits, labels, k, weight)
    labels = labels.long()
    tau, alpha = float(tau), float(alpha)
    if scores.shape[0] == 0:
        return _reduce(scores.new_zeros(0), weight, reduction)
    with torch.autocast(scores.device.type, enabled=False):  # computed in the dtype chosen above
        return _reduce(_per_row_loss(scores, labels, k, tau, alpha), weight, reduction)


# Rows are routed by data-dependent checks and the kernel is an extension call, neither of which
# torch.compile can trace: under it the loss runs eagerly (and the rest of the model compiles).
@torch.compiler.disable
def _per_row_loss(scores, labels, k: int, tau: float, alpha: float) -> torch.Tensor:
    """Per-row loss: the compiled CPU kernel where it serves, the PyTorch paths elsewhere and
    for the rows it flags."""
    if not cpu_kernel.usable(scores, k):
        return _portable_loss(scores, labels, k, tau, alpha)
    want_grad = torch.is_grad_enabled() and scores.requires_grad
    loss, safe = cpu_kernel.SmoothTopkCompiled.apply(scores, labels, k, tau, alpha, want_grad)
    return _replace_unsafe_rows(
        loss, safe, scores, labels, lambda s, y: _portable_loss(s, y, k, tau, alpha)
    )


def _portable_loss(scores, labels, k: int, tau: float, alpha: float) -> torch.Tensor:
    """Per-row loss with PyTorch operations only (any device)."""
    if k == 1:
        return _smooth_top1(scores, labels, tau, alpha)
    if k > power_sums.MAX_K:
        return _tree_then_log_space(scores, labels, k, tau, alpha)
    loss, safe = power_sums.SmoothTopkPowerSums.apply(scores, labels, k, tau, alpha)
    return _replace_unsafe_rows(
        loss, safe, scores, labels, lambda s, y: _tree_then_log_space(s, y, k, tau, alpha)
    )


def hard_topk_svm(
    logits: torch.Tensor,
    labels: torch.Tensor,
    k: int = 5,
    alpha: float = 1.0,
    reduction: str = "mean",
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The hard top-k hinge max(0, alpha + ((s_{-y})_[k] - s_y) / k), the tau -> 0 limit."""
    _check_hyperparameters(k, None, alpha, reduction)
    scores = _check_inputs(logits, labels, k, weight)
    labels = labels.long()
    masked = scores.scatter(1, labels[:, None], float("-inf"))
    kth_other = masked.topk(k, dim=1).values[:, -1]
    true_score = scores.gather(1, labels[:, None]).squeeze(1)
    loss = torch.clamp(float(alpha) + (kth_other - true_score) / k, min=0)
    return _reduce(loss, weight, reduction)
