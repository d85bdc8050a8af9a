"""The fastest path of the smooth top-k loss (2 <= k <= 10): power sums in float64, with a
per-row proof of accuracy.

Notation as in `linear_tree.py`: e_j = exp((s_j - m) / (k tau)) over the classes j != y, m the
largest score, sigma_t the elementary symmetric polynomials of e, and

    L = tau * softplus(z),   z = alpha / tau + log(sigma_k / sigma_{k-1}) + (m - s_y) / (k tau).

Forward.  Newton's identities give sigma_1..sigma_k from the power sums p_t = sum_j e_j^t:
t sigma_t = sum_{i=1}^t (-1)^(i-1) sigma_{t-i} p_i.  That costs k passes over the scores instead
of a product tree, but subtracts, so it can lose precision.  Running the same recursion with
absolute values gives sigmâ_t >= sigma_t, and by induction over t the rounding error of sigma_t
is at most about k^2 u sigmâ_t (u the float64 unit roundoff), so sigmâ_t / sigma_t bounds the
loss of relative precision.

Backward.  The leave-one-out coefficients follow from sigma_t(e without j) = sigma_t -
e_j sigma_{t-1}(e without j), another subtracting recursion whose error for class j is at most
about k^2 u A(e_j), with A(x) = sum_i x^i sigmâ_{k-1-i} increasing in x: bounding it at the
row's largest e bounds it for every class.

Summing the n positive terms of each power sum adds a relative error of at most n u in any
order, which the recursions carry into sigma_t as at most k n u sigmâ_t.  A row is accepted only
when the bounds, with both error terms, promise an error far below the output precision
(`constants.TARGET`: 1e-8 relative for float32 input, 1e-13 for float64; the compiled CPU
kernel applies the same test); the caller recomputes every other row with
the product tree, which never subtracts.  Accepted rows are as exact as the tree's.  The work
is in place on two float64 buffers: fresh large allocations would cost more than the arithmetic.
"""

import torch

from smooth_topk.constants import TARGET
from smooth_topk.pytorch.log_space import gradient_with_graph
from smooth_topk.pytorch.softplus import softplus

_UNIT_ROUNDOFF = 2.0**-53


def accuracy_limit(target: float, k: int, classes: int) -> float:
    """The largest error-bound ratio a row may show and still meet `target` (module docstring:
    2 k^2 u from Newton's recursions, k n u from summing n terms); the Triton kernel and the C++
    kernel apply the same test."""
    return target / ((2 * k * k + k * classes) * _UNIT_ROUNDOFF)


def _newton(power_sums: torch.Tensor) -> torch.Tensor:
    """sigma_1..sigma_k and the absolute-value bounds sigmâ_1..sigmâ_k: (2, B, k) from (B, k).

    Newton's identities t sigma_t - sum_{i<t} (-1)^(i-1) p_i sigma_{t-i} = (-1)^(t-1) p_t
    form a lower-triangular Toeplitz system; the bounds solve the same system with every sign
    made positive.  One batched forward substitution solves both.
    """
    batch, k = power_sums.shape
    device, dtype = power_sums.device, power_sums.dtype
    row = torch.arange(k)
    lag = row[:, None] - row[None, :]  # t - c, for row t and column c (both 0-based), on the CPU
    padded = torch.cat([power_sums.new_zeros(batch, 1), power_sums], 1)  # p_0 := 0
    toeplitz = padded[:, lag.clamp(min=0).to(device)]  # (B, k, k): p_{t-c} below the diagonal
    sign = torch.stack([(-1.0) ** lag, -torch.ones(k, k)]).to(device, dtype)  # (2, k, k)
    matrix = torch.tril(toeplitz * sign[:, None], diagonal=-1)
    matrix = matrix + torch.diag(torch.arange(1.0, k + 1)).to(device, dtype)
    rhs_sign = torch.stack([(-1.0) ** row, torch.ones(k)]).to(device, dtype)  # (2, k)
    rhs = (power_sums * rhs_sign[:, None]).unsqueeze(-1)  # (2, B, k, 1)
    return torch.linalg.solve_triangular(matrix, rhs, upper=False).squeeze(-1)


class SmoothTopkPowerSums(torch.autograd.Function):
    """Per-row smooth top-k loss (2 <= k <= constants.POWER_SUMS_MAX_K) and a mask of the rows
    proven accurate."""

    @staticmethod
    def forward(ctx, scores, labels, k: int, tau: float, alpha: float):
        scale = 1.0 / (k * tau)
        peak = scores.detach().amax(1, keepdim=True).to(torch.float64)
        # e = exp((s - peak) / (k tau)) in float64.  (A mixed-dtype fused add is 10x slower.)
        e = scores.detach().to(torch.float64, copy=True).sub_(peak).mul_(scale).exp_()
        e.scatter_(1, labels[:, None], 0.0)
        largest = e.amax(1)

        power_sums = [e.sum(1)]
        power = torch.mul(e, e)
        for t in range(2, k + 1):
            if t > 2:
                power.mul_(e)
            power_sums.append(power.sum(1))
        solved = _newton(torch.stack(power_sums, 1))
        ones = torch.ones_like(largest)
        sigma = [ones, *solved[0].unbind(1)]
        bound = [ones, *solved[1].unbind(1)]

        # Leave-one-out error bound at the row's largest e (the worst class), with
        # A_t(x) = sum_i x^i sigmâ_{t-i} for t = k-1 and k-2.
        powers = torch.cat([ones[:, None], torch.cumprod(largest[:, None].expand(-1, k - 1), 1)], 1)
        reversed_bound = torch.stack(bound[k - 1 :: -1], 1)  # sigmâ_{k-1}, ..., sigmâ_0
        a_top = (powers * reversed_bound).sum(1)
        a_below = (powers[:, :-1] * reversed_bound[:, 1:]).sum(1)
        leave_one_out = largest * (a_top / sigma[k] + a_below / sigma[k - 1])
        precision = torch.maximum(bound[k] / sigma[k], bound[k - 1] / sigma[k - 1])
        limit = accuracy_limit(TARGET[scores.dtype], k, scores.shape[1])
        safe = (sigma[k] > 0) & (sigma[k - 1] > 0) & (precision <= limit)
        safe &= leave_one_out <= limit

        true_score = scores.detach().gather(1, labels[:, None]).squeeze(1).to(torch.float64)
        z = alpha / tau + torch.log(sigma[k] / sigma[k - 1])
        z = z + (peak.squeeze(1) - true_score) * scale
        loss = tau * softplus(z)

        ctx.save_for_backward(scores, e, labels, z, safe, *sigma[1:])
        ctx.k, ctx.tau, ctx.alpha, ctx.input_dtype = k, tau, alpha, scores.dtype
        ctx.workspace = power  # scratch for the backward: one fresh large allocation fewer
        ctx.mark_non_differentiable(safe)
        return loss.to(scores.dtype), safe

    @staticmethod
    def backward(ctx, grad_loss, _grad_safe):
        scores, e, labels, z, safe, *sigma = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a gradient with its own graph
            grad = gradient_with_graph(
                scores, labels, grad_loss, ctx.k, ctx.tau, ctx.alpha, keep=safe
            )
            return grad, None, None, None, None
        sigma = [None, *sigma]
        k = ctx.k
        weight = grad_loss.to(torch.float64) * torch.sigmoid(z) / k
        weight = torch.where(safe, weight, torch.zeros_like(weight))

        # outside = e_j sigma_{k-2}(e without j), from the recursion
        # sigma_t(e without j) = sigma_t - e_j sigma_{t-1}(e without j).
        outside, ctx.workspace = ctx.workspace, None  # a second backward allocates afresh
        if outside is None:
            outside = torch.empty_like(e)
        if k == 2:
            outside.copy_(e)
        else:
            torch.sub(sigma[1][:, None], e, out=outside)
            for t in range(2, k - 1):
                torch.addcmul(sigma[t][:, None], e, outside, value=-1, out=outside)
            outside.mul_(e)
        # dL/ds_j = w pi^k_j - w pi^{k-1}_j, both terms in [0, w]: each is computed in float64
        # and accumulated in the output dtype, so rounding there costs at most ~u32 * w.
        ratio_k = torch.where(safe, weight / sigma[k], torch.zeros_like(weight))
        ratio_k1 = torch.where(safe, weight / sigma[k - 1], torch.zeros_like(weight))
        grad = torch.empty(e.shape, dtype=ctx.input_dtype, device=e.device)
        torch.mul(outside, -ratio_k1[:, None], out=grad)  # -w pi^{k-1}
        torch.sub(sigma[k - 1][:, None], outside, out=outside)  # sigma_{k-1}(e without j)
        outside.mul_(e).mul_(ratio_k[:, None])  # w pi^k
        grad.add_(outside)
        grad.scatter_(1, labels[:, None], -weight[:, None].to(ctx.input_dtype))
        if not bool(safe.all()):
            grad = torch.where(safe[:, None], grad, torch.zeros_like(grad))
        return grad, None, None, None, None
