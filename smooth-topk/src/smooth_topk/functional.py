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
backward).  `dispatch.py` chooses who computes it: the Triton kernels (CUDA), the compiled CPU
kernel (CPU, k <= 10) or PyTorch operations.  The kernels leave rows with non-finite scores to
the PyTorch paths (on the CPU) or give them NaN (on the GPU).  In PyTorch, k = 1 is
tau * softplus(logsumexp_{j != y}((s_j - s_y + alpha) / tau)), which equals
tau * cross_entropy((s + alpha [j != y]) / tau, y), and for k >= 2 each row takes the first path
of `PYTORCH_PATHS` that can prove its accuracy (float64 power sums with an error bound, a
rescaled linear-space product tree, float64 log space).  The implementation notes
(smooth-topk/docs/implementation.md) tell the whole story.
float16 / bfloat16 input is computed in float32; float64 stays float64.
"""

import torch

from smooth_topk import cpu_kernel, dispatch, triton_kernel
from smooth_topk.checks import (
    Margin,
    as_column,
    as_rows,
    check_hyperparameters,
    check_inputs,
    reduce,
    rows_of,
)
from smooth_topk.constants import POWER_SUMS_MAX_K, TARGET
from smooth_topk.dispatch import implementation_in_use
from smooth_topk.pytorch import power_sums
from smooth_topk.pytorch.linear_tree import SmoothTopkLinearTree
from smooth_topk.pytorch.log_space import log_esp, smooth_topk_log_space
from smooth_topk.pytorch.softplus import softplus

__all__ = ["smooth_topk_svm", "hard_topk_svm", "log_esp", "implementation_in_use"]


def _smooth_top1(scores: torch.Tensor, labels: torch.Tensor, tau: float, alpha: Margin):
    """L_{1,tau} = tau * softplus(z), z = logsumexp_{j != y}((s_j - s_y + alpha) / tau): the
    smooth top-1 SVM, which is tau * CE((s + alpha [j != y]) / tau, y).  Written this way, a
    small loss (the label far ahead) keeps its relative precision, which CE's logsumexp minus
    the true logit loses to cancellation in float32; the shift by the row maximum keeps the
    dominant terms' differences exact before the division by a small tau."""
    peak = scores.detach().amax(1, keepdim=True)
    true_logit = (scores.gather(1, labels[:, None]) - peak).squeeze(1) / tau
    logits = (scores - peak).add_(as_column(alpha, scores.dtype)).div_(tau)  # one buffer
    logits = logits.scatter(1, labels[:, None], float("-inf"))
    return tau * softplus(torch.logsumexp(logits, 1) - true_logit)


def _replace_unsafe_rows(loss, safe, scores, labels, alpha: Margin, recompute) -> torch.Tensor:
    """`loss` with the rows not marked safe recomputed by `recompute(scores, labels, alpha)`
    on those rows."""
    if bool(safe.all()):
        return loss
    rows = (~safe).nonzero().squeeze(1)
    again = recompute(scores[rows], labels[rows], rows_of(alpha, rows))
    return loss.index_copy(0, rows, again.to(loss.dtype))


def _log_space(scores, labels, k: int, tau: float, alpha: Margin):
    return smooth_topk_log_space(scores.double(), labels, k, tau, alpha), None


# The PyTorch paths for k >= 2, in the order a row tries them: (name, the largest k it serves,
# per-row loss and the mask of the rows it proved accurate).  The last proves every row.
PYTORCH_PATHS = (
    ("power sums", POWER_SUMS_MAX_K, power_sums.SmoothTopkPowerSums.apply),
    ("linear-space product tree", None, SmoothTopkLinearTree.apply),
    ("log space", None, _log_space),
)


def _through_paths(paths, scores, labels, k: int, tau: float, alpha: Margin) -> torch.Tensor:
    """Each row's loss by the first of `paths` that proves it."""
    (_, _, compute), rest = paths[0], paths[1:]
    loss, safe = compute(scores, labels, k, tau, alpha)
    if safe is None:
        return loss
    return _replace_unsafe_rows(
        loss, safe, scores, labels, alpha, lambda s, y, a: _through_paths(rest, s, y, k, tau, a)
    )


@torch.compiler.disable  # data-dependent row routing: eager under torch.compile
def _pytorch_loss(scores, labels, k: int, tau: float, alpha: Margin) -> torch.Tensor:
    """Per-row loss with PyTorch operations only (any device)."""
    if k == 1:
        return _smooth_top1(scores, labels, tau, alpha)
    paths = tuple(path for path in PYTORCH_PATHS if path[1] is None or k <= path[1])
    return _through_paths(paths, scores, labels, k, tau, alpha)


def _cpu_kernel_loss(scores, labels, k: int, tau: float, alpha: Margin) -> torch.Tensor:
    """Per-row loss by the compiled CPU kernel; the rows it flags (non-finite scores) by the
    PyTorch paths.  Under torch.compile the kernel is one graph operator
    (`cpu_kernel.loss_and_grad`, NaN for flagged rows), so model and loss compile together."""
    if torch.compiler.is_compiling():
        margins = cpu_kernel.margins(alpha)
        return cpu_kernel.loss_and_grad(scores, labels, margins, k, tau, TARGET[scores.dtype])[0]
    want_grad = torch.is_grad_enabled() and scores.requires_grad
    loss, safe = cpu_kernel.CpuKernelLoss.apply(scores, labels, k, tau, alpha, want_grad)
    return _replace_unsafe_rows(
        loss, safe, scores, labels, alpha, lambda s, y, a: _pytorch_loss(s, y, k, tau, a)
    )


def _triton_loss(batch, k: int, tau: float) -> torch.Tensor:
    """Per-row loss by the Triton kernels, as one graph operator (no host synchronisation);
    ignored rows are passed with label -1, which the kernels skip."""
    labels = batch.labels
    if batch.ignored is not None:
        labels = labels.masked_fill(batch.ignored, -1)
    margins = cpu_kernel.margins(batch.alpha, batch.scores.device)
    target = triton_kernel.target_for(batch.scores.dtype)
    return triton_kernel.loss_and_grad(batch.scores, labels, margins, k, tau, target)[0]


def _loss_dtype(scores: torch.Tensor) -> torch.dtype:
    return torch.float64 if scores.dtype == torch.float64 else torch.float32


def smooth_topk_svm(
    logits: torch.Tensor,
    labels: torch.Tensor,
    k: int = 5,
    tau: float = 1.0,
    alpha: float | torch.Tensor = 1.0,
    reduction: str = "mean",
    *,
    weight: torch.Tensor | None = None,
    sample_weight: torch.Tensor | None = None,
    ignore_index: int = -100,
) -> torch.Tensor:
    """The smooth top-k SVM loss L_{k,tau} of (B, C) scores and (B,) labels.

    `alpha` is one margin for all samples or a (B,) tensor of per-sample margins (no gradient
    flows to it).  `weight` (C,) weighs each class and `sample_weight` (B,) each sample;
    labels equal to `ignore_index` are left out (see `smooth_topk.checks` for how "mean"
    divides, as in `torch.nn.CrossEntropyLoss`).  Returns a float32 scalar (float64 for
    float64 input), or (B,) with reduction="none".
    """
    check_hyperparameters(k, tau, alpha, reduction)
    scored = isinstance(logits, torch.Tensor) and torch.is_floating_point(logits)
    implementation = dispatch.choose(logits, k) if scored else "pytorch"
    batch = check_inputs(
        logits,
        labels,
        k,
        alpha,
        weight,
        sample_weight,
        ignore_index,
        raw_scores=implementation == "triton",
    )
    scores, tau = batch.scores, float(tau)
    if scores.shape[0] == 0:  # zero, in the graph: backward gives a (0, C) zero gradient
        return reduce(scores.to(_loss_dtype(scores)).sum(1) * 0, batch, reduction)
    with torch.autocast(scores.device.type, enabled=False):  # computed in the dtype chosen above
        if implementation == "triton":
            loss = _triton_loss(batch, k, tau)
        elif implementation == "cpu_kernel":
            loss = _cpu_kernel_loss(scores, batch.labels, k, tau, batch.alpha)
        else:
            loss = _pytorch_loss(scores, batch.labels, k, tau, batch.alpha)
        return reduce(loss, batch, reduction)


def hard_topk_svm(
    logits: torch.Tensor,
    labels: torch.Tensor,
    k: int = 5,
    alpha: float | torch.Tensor = 1.0,
    reduction: str = "mean",
    *,
    weight: torch.Tensor | None = None,
    sample_weight: torch.Tensor | None = None,
    ignore_index: int = -100,
) -> torch.Tensor:
    """The hard top-k hinge max(0, alpha + ((s_{-y})_[k] - s_y) / k), the tau -> 0 limit.
    Arguments as in `smooth_topk_svm`.  A row with a NaN score at any class has a NaN loss, as
    in cross-entropy (`topk` would rank a NaN first and hide it behind the k-th score)."""
    check_hyperparameters(k, None, alpha, reduction)
    batch = check_inputs(logits, labels, k, alpha, weight, sample_weight, ignore_index)
    scores, labels = batch.scores, batch.labels
    masked = scores.scatter(1, labels[:, None], float("-inf"))
    kth_other = masked.topk(k, dim=1).values[:, -1]
    true_score = scores.gather(1, labels[:, None]).squeeze(1)
    margin = as_rows(batch.alpha, scores.dtype)
    loss = torch.clamp(margin + (kth_other - true_score) / k, min=0)
    loss = loss.masked_fill(scores.detach().isnan().any(1), float("nan"))
    return reduce(loss, batch, reduction)
