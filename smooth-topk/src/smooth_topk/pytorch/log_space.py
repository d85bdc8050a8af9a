"""Log elementary symmetric polynomials, evaluated in log space.

For scores x_1..x_n the elementary symmetric polynomials of e_i = exp(x_i) are the
coefficients of prod_i (1 + e_i X):

    sigma_j = sum over j-subsets A of prod_{i in A} e_i,   j = 0..k.

We multiply the n degree-1 polynomials pairwise in a balanced tree (depth log2 n), truncating
every product at degree k, so the cost is O(n k) per row.  Each coefficient is kept as its
logarithm and every product is a log-sum-exp, so nothing overflows or underflows whatever the
scale of x.  Entries equal to -inf contribute the polynomial 1: they act as absent classes.

This path is exact and always safe; the loss uses it for the rows that its faster linear-space
path cannot represent (see `linear_tree.py`).
"""

import torch

from smooth_topk.checks import Margin, as_rows
from smooth_topk.pytorch.softplus import softplus


def _safe_logsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """log(sum(exp(x))) over `dim`, -inf with a zero (not NaN) gradient when every entry is
    -inf.  Plain differentiable operations, with no NaN in a branch that `where` discards, so
    autograd and torch.func can differentiate it as often as asked."""
    peak = x.detach().amax(dim, keepdim=True)
    peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
    total = (x - peak).exp().sum(dim, keepdim=True)
    positive = total > 0
    log_total = torch.where(positive, total, torch.ones_like(total)).log()
    out = torch.where(positive, log_total, torch.full_like(total, float("-inf"))) + peak
    return out.squeeze(dim)


def _log_poly_product(left: torch.Tensor, right: torch.Tensor, k: int) -> torch.Tensor:
    """Product of log-coefficient polynomials (..., d1 + 1) x (..., d2 + 1), cut at degree k."""
    d1, d2 = left.shape[-1] - 1, right.shape[-1] - 1
    top = min(d1 + d2, k)
    a = torch.arange(d1 + 1, device=left.device)[:, None]
    b = torch.arange(top + 1, device=left.device)[None, :] - a
    index = torch.where((b >= 0) & (b <= d2), b, torch.full_like(b, d2 + 1))
    absent = torch.full_like(right[..., :1], float("-inf"))
    toeplitz = torch.cat([right, absent], dim=-1)[..., index]  # (..., d1 + 1, top + 1)
    return _safe_logsumexp(left.unsqueeze(-1) + toeplitz, -2)


def log_esp(x: torch.Tensor, k: int) -> torch.Tensor:
    """log sigma_0..sigma_k of exp(x) along the last dimension: (..., n) -> (..., k + 1).

    -inf entries act as absent classes; sigma_j for j larger than the number of present entries
    is 0, so its log is -inf.  Differentiable: the gradient of log sigma_j with respect to x_i is
    the probability that i belongs to a j-subset drawn with weight prod exp(x).
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(f"k must be a non-negative int, got {k!r}")
    if not torch.is_floating_point(x):
        raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() == 0:
        raise ValueError("x must have at least one dimension (the classes)")
    n = x.shape[-1]
    peak = x.detach().amax(-1, keepdim=True) if n > 0 else x.new_zeros(x.shape[:-1] + (1,))
    peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
    width = 1 << max(n - 1, 0).bit_length()  # next power of two
    shifted = torch.nn.functional.pad(x - peak, (0, width - n), value=float("-inf"))
    polys = torch.stack([torch.zeros_like(shifted), shifted], dim=-1)  # (..., width, 2)
    polys = polys[..., : min(k, 1) + 1]
    while polys.shape[-2] > 1:
        half = polys.shape[-2] // 2
        polys = _log_poly_product(polys[..., :half, :], polys[..., half:, :], k)
    coefficients = polys.squeeze(-2)
    missing = k + 1 - coefficients.shape[-1]
    if missing > 0:
        coefficients = torch.nn.functional.pad(coefficients, (0, missing), value=float("-inf"))
    degree = torch.arange(k + 1, device=x.device, dtype=x.dtype)
    return coefficients + degree * peak


def smooth_topk_log_space(scores: torch.Tensor, labels: torch.Tensor, k: int, tau: float, alpha):
    """Per-row loss in log space: exact and safe for any scores, and differentiable twice (the
    fallback of the faster paths, and how they give second derivatives)."""
    masked = scores.scatter(1, labels[:, None], float("-inf"))
    peak = masked.detach().amax(1, keepdim=True)
    log_sigma = log_esp((masked - peak) / (k * tau), k)
    true_score = scores.gather(1, labels[:, None]).squeeze(1)
    z = as_rows(alpha, scores.dtype) / tau + log_sigma[:, k] - log_sigma[:, k - 1]
    z = z + (peak.squeeze(1) - true_score) / (k * tau)
    return tau * softplus(z)


def gradient_with_graph(
    scores, labels, grad_loss, k: int, tau: float, alpha: Margin, keep=None
) -> torch.Tensor:
    """grad_loss-weighted dL/ds as a function autograd can differentiate again: what the fast
    paths' backward returns under create_graph=True (gradient penalties, Hessians).  Computed in
    float64 log space from the scores, which carry their graph there; in the scores' dtype, and
    zero on the rows outside the mask `keep` when given (rows another path computed)."""
    with torch.enable_grad():
        loss = smooth_topk_log_space(scores.double(), labels, k, tau, alpha)
        (grad,) = torch.autograd.grad(loss, scores, grad_loss.to(loss.dtype), create_graph=True)
    return grad if keep is None else torch.where(keep[:, None], grad, torch.zeros_like(grad))
