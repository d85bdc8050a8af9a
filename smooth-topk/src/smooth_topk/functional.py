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

import torch

from smooth_topk import cpu_kernel, implementation, power_sums, triton_kernel
from smooth_topk.checks import (
    Margin,
    as_column,
    as_rows,
    check_hyperparameters,
    check_inputs,
    reduce,
    rows_of,
)
from smooth_topk.linear_tree import SmoothTopkLinearTree
from smooth_topk.log_space import log_esp, smooth_topk_log_space
from smooth_topk.softplus import softplus

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


def _tree_then_log_space(scores, labels, k: int, tau: float, alpha: Margin) -> torch.Tensor:
    loss, safe = SmoothTopkLinearTree.apply(scores, labels, k, tau, alpha)
    return _replace_unsafe_rows(
        loss,
        safe,
        scores,
        labels,
        alpha,
        lambda s, y, a: smooth_topk_log_space(s.double(), y, k, tau, a),
    )


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
    on_triton = _uses_triton(logits, k)
    batch = check_inputs(
        logits, labels, k, alpha, weight, sample_weight, ignore_index, raw_scores=on_triton
    )
    scores, tau = batch.scores, float(tau)
    if scores.shape[0] == 0:
        return reduce(scores.new_zeros(0, dtype=_loss_dtype(scores)), batch, reduction)
    with torch.autocast(scores.device.type, enabled=False):  # computed in the dtype chosen above
        if on_triton:
            loss = _triton_loss(batch, k, tau)
        else:
            loss = _per_row_loss(scores, batch.labels, k, tau, batch.alpha)
        return reduce(loss, batch, reduction)


def implementation_in_use(
    device: str | torch.device, k: int, dtype: torch.dtype = torch.float32
) -> str:
    """Which implementation computes the loss of `dtype` scores on `device` with this k:
    "triton", "cpu_kernel" or "pytorch" (for run records and logs)."""
    probe = torch.empty(0, k + 1, device=device, dtype=dtype)
    if _uses_triton(probe, k):
        return "triton"
    if _uses_cpu_kernel(probe, k):
        return "cpu_kernel"
    return "pytorch"


def _loss_dtype(scores: torch.Tensor) -> torch.dtype:
    return torch.float64 if scores.dtype == torch.float64 else torch.float32


def _uses_triton(logits: torch.Tensor, k: int) -> bool:
    """Whether the Triton kernels compute this call (`implementation.py`)."""
    choice = _implementation()
    if choice not in ("auto", "triton") or not isinstance(logits, torch.Tensor):
        return False
    usable = triton_kernel.usable(logits, k)
    if choice == "triton" and not usable:
        raise ValueError(
            f"{implementation.VARIABLE}=triton, but the Triton kernels cannot serve these scores "
            f"({logits.device.type}, {logits.dtype}, k={k}; they need k <= {triton_kernel.MAX_K} "
            f"and CUDA tensors): {triton_kernel.status()}"
        )
    return usable and (choice == "triton" or logits.is_cuda)


def _uses_cpu_kernel(scores: torch.Tensor, k: int) -> bool:
    """Whether the compiled CPU kernel computes these scores (when Triton does not)."""
    return _implementation() != "pytorch" and cpu_kernel.usable(scores, k)


def _triton_loss(batch, k: int, tau: float) -> torch.Tensor:
    """Per-row loss by the Triton kernels, as one graph operator (no host synchronisation);
    ignored rows are passed with label -1, which the kernels skip."""
    labels = batch.labels
    if batch.ignored is not None:
        labels = labels.masked_fill(batch.ignored, -1)
    margins = cpu_kernel.margins(batch.alpha, batch.scores.device)
    target = triton_kernel.target_for(batch.scores.dtype)
    return triton_kernel.loss_and_grad(batch.scores, labels, margins, k, tau, target)[0]


def _per_row_loss(scores, labels, k: int, tau: float, alpha: Margin) -> torch.Tensor:
    """Per-row loss without Triton: the compiled CPU kernel where it serves, the PyTorch paths
    elsewhere and for the rows it flags.  Under torch.compile the kernel is one graph operator
    (`cpu_kernel.loss_and_grad`); the PyTorch paths route rows by data-dependent checks that
    torch.compile cannot trace, so they run eagerly there (a graph break)."""
    if not _uses_cpu_kernel(scores, k):
        if _implementation() == "cpu_kernel":
            raise ValueError(
                f"{implementation.VARIABLE}=cpu_kernel, but the compiled CPU kernel cannot serve "
                f"these scores ({scores.device.type}, {scores.dtype}, k={k}; it needs CPU "
                f"float32/float64 with k <= {cpu_kernel.MAX_K} and a C++ compiler): "
                f"{cpu_kernel.status()}"
            )
        return _portable_loss(scores, labels, k, tau, alpha)
    if torch.compiler.is_compiling():
        margins = cpu_kernel.margins(alpha)
        return cpu_kernel.loss_and_grad(
            scores, labels, margins, k, tau, power_sums.TARGET[scores.dtype]
        )[0]
    want_grad = torch.is_grad_enabled() and scores.requires_grad
    loss, safe = cpu_kernel.SmoothTopkCompiled.apply(scores, labels, k, tau, alpha, want_grad)
    return _replace_unsafe_rows(
        loss, safe, scores, labels, alpha, lambda s, y, a: _portable_loss(s, y, k, tau, a)
    )


@torch.compiler.assume_constant_result  # torch.compile takes the choice as a constant
def _implementation() -> str:
    return implementation.selected()


@torch.compiler.disable  # data-dependent row routing: eager under torch.compile
def _portable_loss(scores, labels, k: int, tau: float, alpha: Margin) -> torch.Tensor:
    """Per-row loss with PyTorch operations only (any device)."""
    if k == 1:
        return _smooth_top1(scores, labels, tau, alpha)
    if k > power_sums.MAX_K:
        return _tree_then_log_space(scores, labels, k, tau, alpha)
    loss, safe = power_sums.SmoothTopkPowerSums.apply(scores, labels, k, tau, alpha)
    return _replace_unsafe_rows(
        loss, safe, scores, labels, alpha, lambda s, y, a: _tree_then_log_space(s, y, k, tau, a)
    )


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
    Arguments as in `smooth_topk_svm`."""
    check_hyperparameters(k, None, alpha, reduction)
    batch = check_inputs(logits, labels, k, alpha, weight, sample_weight, ignore_index)
    scores, labels = batch.scores, batch.labels
    masked = scores.scatter(1, labels[:, None], float("-inf"))
    kth_other = masked.topk(k, dim=1).values[:, -1]
    true_score = scores.gather(1, labels[:, None]).squeeze(1)
    margin = as_rows(batch.alpha, scores.dtype)
    loss = torch.clamp(margin + (kth_other - true_score) / k, min=0)
    return reduce(loss, batch, reduction)
