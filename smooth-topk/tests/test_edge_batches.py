"""Batches at the edges: a NaN score is never hidden, and an empty batch back-propagates."""

import pytest
import torch
import torch.nn.functional as F

from smooth_topk.functional import hard_topk_svm, smooth_topk_svm

CLASSES = 10


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_hard_hinge_gives_nan_for_a_nan_score_at_any_class(k):
    scores = torch.randn(CLASSES, CLASSES, generator=torch.Generator().manual_seed(k))
    labels = torch.arange(CLASSES) % 3
    scores[torch.arange(CLASSES), torch.arange(CLASSES)] = float("nan")  # row i: NaN at class i
    loss = hard_topk_svm(scores, labels, k=k, reduction="none")
    assert loss.isnan().all(), loss  # the label's class and every other one
    assert F.cross_entropy(scores, labels, reduction="none").isnan().all()
    clean = torch.randn(4, CLASSES)
    assert torch.isfinite(hard_topk_svm(clean, labels[:4], k=k, reduction="none")).all()


@pytest.mark.parametrize("loss_function", [smooth_topk_svm, hard_topk_svm])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_an_empty_batch_back_propagates_a_zero_gradient(loss_function, reduction):
    scores = torch.zeros(0, CLASSES, requires_grad=True)
    labels = torch.zeros(0, dtype=torch.long)
    loss = loss_function(scores, labels, k=3, reduction=reduction)
    expected = F.cross_entropy(scores, labels, reduction=reduction)
    assert loss.shape == expected.shape
    if reduction == "mean":
        assert loss.isnan() and expected.isnan()  # as cross-entropy: 0 / 0
    else:
        assert (loss == 0).all()
    loss.sum().backward()
    assert scores.grad is not None and scores.grad.shape == (0, CLASSES)
