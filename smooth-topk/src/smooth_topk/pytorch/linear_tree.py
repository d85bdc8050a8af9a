"""The general path of the smooth top-k loss: a rescaled linear-space product tree, exact backward.

It serves every k >= 2, and the rows that the power-sum path (`power_sums.py`) cannot prove
accurate.  Notation (see `functional.smooth_topk_svm`): for one row, e_j = exp((s_j - m) / (k tau))
over the classes j != y (e_y = 0), m the largest score of the row (any shift m gives the same
loss), and sigma_i the elementary symmetric polynomials of e.  The loss is

    L = tau * softplus(z),   z = alpha / tau + log(sigma_k / sigma_{k-1}) + (m - s_y) / (k tau).

Forward.  The coefficients of prod_j (1 + g e_j X), truncated at degree k, are built by a
balanced tree of pairwise products (node i of a level times node i + half).  The row scale
g = (k!)^(1/k) / sigma_1 keeps every coefficient g^i sigma_i of the root below about
exp(k / e), and makes all intermediate coefficients smaller than the root's, so nothing
overflows; terms lost to underflow are negligible whenever the root's sigma_{k-1} and sigma_k
are not tiny.  Rows where they are (extreme score spreads with a tiny tau) are flagged unsafe
and recomputed by the caller in float64 log space.

Backward.  d log sigma_i / d x_j = pi^i_j = e_j sigma_{i-1}(e without j) / sigma_i, the
probability that j is in an i-subset.  The leave-one-out coefficients come from a top-down pass
over the same tree: the "outside" polynomial of a child is the outside polynomial of its parent
times its sibling.  Everything is a sum of positive terms, so float32 keeps full relative
precision, and the gradient is exact (no subtraction, no approximation):

    dL/ds_j = sigmoid(z) / k * (pi^k_j - pi^{k-1}_j)  for j != y,     dL/ds_y = -sigmoid(z) / k.

Layout: a level is a tensor (degree, batch, nodes) holding coefficients 1..degree (the constant
term is always 1 and is not stored); node i pairs with node i + nodes / 2, so siblings are the
two contiguous halves of the last dimension and the scores never need a transposing copy.
"""

import math

import torch

from smooth_topk.checks import as_rows
from smooth_topk.pytorch.log_space import gradient_with_graph
from smooth_topk.pytorch.softplus import softplus

_SAFE_RANGE = {torch.float32: (1e-20, 1e30), torch.float64: (1e-250, 1e250)}


def _multiply_halves(level: torch.Tensor, k: int) -> torch.Tensor:
    """Pairwise products of node i and node i + half, truncated at degree k."""
    degree, batch, nodes = level.shape
    half = nodes // 2
    left, right = level[..., :half], level[..., half:]
    out_degree = min(2 * degree, k)
    out = level.new_empty(out_degree, batch, half)
    torch.add(left, right, out=out[:degree])
    out[degree:].zero_()
    for a in range(1, degree + 1):
        count = min(degree, out_degree - a)
        if count <= 0:
            break
        out[a : a + count].addcmul_(left[a - 1 : a], right[:count])
    return out


def _outside_of_children(outside: torch.Tensor, children: torch.Tensor) -> torch.Tensor:
    """Outside polynomials of the 2h children given those of the h parents (degree K kept)."""
    top = outside.shape[0]
    degree, batch, nodes = children.shape
    half = nodes // 2
    out = outside.new_empty(top, batch, nodes)
    shared = min(degree, top)
    halves = ((slice(0, half), children[..., half:]), (slice(half, nodes), children[..., :half]))
    for own, sibling in halves:
        target = out[..., own]
        torch.add(outside[:shared], sibling[:shared], out=target[:shared])
        target[shared:].copy_(outside[shared:])
        for b in range(1, min(degree, top - 1) + 1):
            target[b:top].addcmul_(sibling[b - 1 : b], outside[: top - b])
    return out


def _coefficient(poly: torch.Tensor, t: int) -> torch.Tensor | float:
    """Coefficient t of a stored polynomial (the constant term 1 is implicit)."""
    return 1.0 if t == 0 else poly[t - 1]


class SmoothTopkLinearTree(torch.autograd.Function):
    """Per-row smooth top-k loss (k >= 2) and a mask of the rows it computed safely."""

    @staticmethod
    def forward(ctx, scores, labels, k: int, tau: float, alpha: float):
        batch, classes = scores.shape
        dtype = scores.dtype
        peak = scores.detach().amax(1)
        width = 1 << (classes - 1).bit_length()
        e = scores.new_empty(batch, width)
        e[:, classes:].zero_()
        torch.sub(scores.detach(), peak[:, None], out=e[:, :classes])
        e[:, :classes].mul_(1.0 / (k * tau)).exp_()
        e.scatter_(1, labels[:, None], 0.0)
        sigma_1 = e.sum(1)
        scale = math.exp(math.lgamma(k + 1) / k) / sigma_1
        e.mul_(scale[:, None])

        levels = [e.unsqueeze(0)]
        while levels[-1].shape[-1] > 1:
            levels.append(_multiply_halves(levels[-1], k))
        root = levels[-1][..., 0]
        c_k, c_k1 = root[k - 1], root[k - 2]
        tiny, huge = _SAFE_RANGE[dtype]
        safe = (c_k > tiny) & (c_k < huge) & (c_k1 > tiny) & (c_k1 < huge)

        true_score = scores.gather(1, labels[:, None]).squeeze(1)
        z = as_rows(alpha, dtype) / tau + torch.log(c_k / c_k1) - torch.log(scale)
        z = z + (peak - true_score) / (k * tau)
        loss = tau * softplus(z)

        ctx.save_for_backward(scores, labels, z, c_k, c_k1, safe)
        ctx.levels = levels
        ctx.k, ctx.classes, ctx.tau, ctx.alpha = k, classes, tau, alpha
        ctx.mark_non_differentiable(safe)
        return loss, safe

    @staticmethod
    def backward(ctx, grad_loss, _grad_safe):
        scores, labels, z, c_k, c_k1, safe = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a gradient with its own graph
            grad = gradient_with_graph(
                scores, labels, grad_loss, ctx.k, ctx.tau, ctx.alpha, keep=safe
            )
            return grad, None, None, None, None
        levels, k = ctx.levels, ctx.k
        top = k - 1
        weight = grad_loss * torch.sigmoid(z) / k
        weight = torch.where(safe, weight, torch.zeros_like(weight))

        outside = levels[-1].new_zeros(top, levels[-1].shape[1], 1)
        for children in reversed(levels[1:-1]):
            outside = _outside_of_children(outside, children)

        # Leaf j with sibling j' and parent outside polynomial Q:
        #   O_j[t] = Q[t] + e_j' Q[t-1],  pi^i_j = e_j O_j[i-1] / c_i,  so the gradient is
        #   e_j * U + e_j e_j' * V with U, V computed once per parent (half the leaves).
        e = levels[0][0]
        batch, width = e.shape
        half = width // 2
        ratio_k = torch.where(safe, weight / c_k, torch.zeros_like(weight))
        ratio_k1 = torch.where(safe, weight / c_k1, torch.zeros_like(weight))
        q_top = outside[top - 1]
        q_below = _coefficient(outside, top - 1)
        q_two_below = _coefficient(outside, top - 2) if top >= 2 else 0.0
        ratio_k, ratio_k1 = ratio_k[:, None], ratio_k1[:, None]
        u = q_top * ratio_k - q_below * ratio_k1
        v = q_below * ratio_k - q_two_below * ratio_k1
        v = v * e[:, :half] * e[:, half:]
        grad = torch.addcmul(v.unsqueeze(1), e.view(batch, 2, half), u.unsqueeze(1))
        grad = grad.view(batch, width)[:, : ctx.classes]
        grad.scatter_(1, labels[:, None], -weight[:, None])
        if not bool(safe.all()):
            grad = torch.where(safe[:, None], grad, torch.zeros_like(grad))
        return grad, None, None, None, None
