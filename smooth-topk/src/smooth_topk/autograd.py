"""The backward shared by the loss operators (`cpu_kernel.loss_and_grad`,
`triton_kernel.loss_and_grad`): each returns the per-row loss and its gradient dL_i/ds_i, so the
backward scales that gradient by the upstream one.  Under create_graph=True it recomputes the
gradient with a graph (float64 log space), so second derivatives stay exact."""

import torch

from smooth_topk.pytorch.log_space import gradient_with_graph


def _save(ctx, inputs, output) -> None:
    scores, labels, margins, k, tau, _ = inputs
    ctx.save_for_backward(scores, labels, margins, output[1])
    ctx.k, ctx.tau = k, tau
    ctx.mark_non_differentiable(output[1])


def _backward(ctx, grad_loss, _grad_of_grad):
    scores, labels, margins, grad = ctx.saved_tensors
    if torch.is_grad_enabled():  # create_graph=True: a gradient with its own graph
        grad = gradient_with_graph(scores, labels, grad_loss, ctx.k, ctx.tau, margins)
        return grad, None, None, None, None, None
    return grad * grad_loss[:, None].to(grad.dtype), None, None, None, None, None


def register_loss_autograd(operator) -> None:
    """Make a (scores, labels, margins, k, tau, target) -> (loss, grad) operator differentiable."""
    operator.register_autograd(_backward, setup_context=_save)
