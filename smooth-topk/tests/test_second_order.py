"""Second derivatives (create_graph=True): gradient penalties and Hessians are exact on every
path, never silently zero."""

import pytest
import torch

from brute_force import brute_force_batch
from smooth_topk.functional import smooth_topk_svm
from smooth_topk.pytorch.linear_tree import SmoothTopkLinearTree
from smooth_topk.pytorch.power_sums import SmoothTopkPowerSums


def inputs(classes=7, batch=3, scale=2.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, classes, generator=generator, dtype=torch.float64) * scale
    return scores, torch.randint(0, classes, (batch,), generator=generator)


@pytest.mark.usefixtures("implementation")
@pytest.mark.parametrize("k", [1, 2, 4])
def test_gradgradcheck(k):
    scores, labels = inputs()
    leaf = scores.clone().requires_grad_()
    assert torch.autograd.gradgradcheck(
        lambda s: smooth_topk_svm(s, labels, k, 0.7, 0.5, reduction="sum"), (leaf,)
    )


@pytest.mark.usefixtures("implementation")
@pytest.mark.parametrize("k", [2, 3])
def test_hessian_matches_the_brute_force_definition(k):
    scores, labels = inputs(classes=6, batch=1, seed=1)

    def ours(s):
        return smooth_topk_svm(s[None], labels, k, 0.5, 1.0, reduction="sum")

    def reference(s):
        return brute_force_batch(s[None], labels, k, 0.5, 1.0).sum()

    ours_hessian = torch.autograd.functional.hessian(ours, scores[0])
    assert ours_hessian.abs().max() > 1e-3  # not the silent zeros of a graph-less gradient
    torch.testing.assert_close(
        ours_hessian, torch.autograd.functional.hessian(reference, scores[0]), rtol=1e-7, atol=1e-9
    )


@pytest.mark.usefixtures("implementation")
def test_gradient_penalty_has_the_right_gradient():
    scores, labels = inputs(seed=2)

    def penalised(function, s):
        (grad,) = torch.autograd.grad(function(s), s, create_graph=True)
        return function(s) + (grad**2).sum()

    ours = scores.clone().requires_grad_()
    penalised(lambda s: smooth_topk_svm(s, labels, 3, 0.5), ours).backward()
    reference = scores.clone().requires_grad_()
    penalised(lambda s: brute_force_batch(s, labels, 3, 0.5, 1.0).mean(), reference).backward()
    torch.testing.assert_close(ours.grad, reference.grad, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("path", [SmoothTopkPowerSums, SmoothTopkLinearTree])
def test_each_pytorch_path_is_twice_differentiable(path):
    scores, labels = inputs(seed=3)
    leaf = scores.clone().requires_grad_()

    def loss(s):
        return path.apply(s, labels, 3, 0.5, 1.0)[0].sum()

    assert torch.autograd.gradgradcheck(loss, (leaf,))


def test_tree_path_for_large_k_is_twice_differentiable():
    scores, labels = inputs(classes=14, batch=2, seed=4)
    leaf = scores.clone().requires_grad_()
    assert torch.autograd.gradgradcheck(lambda s: smooth_topk_svm(s, labels, 12, 1.0), (leaf,))
