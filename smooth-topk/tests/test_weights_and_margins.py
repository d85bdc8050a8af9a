"""Class weights, sample weights, ignore_index and per-sample / per-class margins, each against
its definition (the per-row loss, weighed and averaged by hand)."""

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F

from brute_force import brute_force_loss
from smooth_topk import HardTopkSVM, SmoothTopkSVM
from smooth_topk.functional import hard_topk_svm, smooth_topk_svm

CLASSES, BATCH = 7, 12


def inputs(seed: int = 0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(BATCH, CLASSES, generator=generator, dtype=dtype)
    labels = torch.randint(0, CLASSES, (BATCH,), generator=generator)
    return scores, labels


@pytest.mark.usefixtures("implementation")
@pytest.mark.parametrize("k", [1, 3])
def test_class_weight_has_cross_entropy_semantics(k):
    scores, labels = inputs()
    weight = torch.rand(CLASSES, dtype=torch.float64) + 0.1
    rows = smooth_topk_svm(scores, labels, k, 0.5, 1.0, reduction="none")
    expected = (weight[labels] * rows).sum() / weight[labels].sum()
    torch.testing.assert_close(smooth_topk_svm(scores, labels, k, 0.5, weight=weight), expected)
    summed = smooth_topk_svm(scores, labels, k, 0.5, reduction="sum", weight=weight)
    torch.testing.assert_close(summed, (weight[labels] * rows).sum())
    none = smooth_topk_svm(scores, labels, k, 0.5, reduction="none", weight=weight)
    torch.testing.assert_close(none, weight[labels] * rows)


def test_class_weight_matches_cross_entropy_where_the_loss_is_cross_entropy():
    scores, labels = inputs()
    weight = torch.rand(CLASSES, dtype=torch.float64) + 0.1
    ours = smooth_topk_svm(scores, labels, k=1, tau=1.0, alpha=0.0, weight=weight)
    torch.testing.assert_close(ours, F.cross_entropy(scores, labels, weight=weight))


@pytest.mark.usefixtures("implementation")
def test_ignore_index_leaves_samples_out_like_cross_entropy():
    scores, labels = inputs()
    ignored = torch.zeros(BATCH, dtype=torch.bool)
    ignored[[1, 4, 5]] = True
    marked = labels.masked_fill(ignored, -100)
    scores = scores.clone()
    scores[1] = float("nan")  # an ignored row's scores never matter
    kept = ~ignored
    scores_kept = scores[kept].detach().requires_grad_()
    expected = smooth_topk_svm(scores_kept, labels[kept], 3, 0.5)
    expected.backward()
    leaf = scores.detach().requires_grad_()
    loss = smooth_topk_svm(leaf, marked, 3, 0.5)
    loss.backward()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(leaf.grad[kept], scores_kept.grad)
    assert torch.equal(leaf.grad[ignored], torch.zeros(3, CLASSES, dtype=leaf.dtype))
    rows = smooth_topk_svm(leaf, marked, 3, 0.5, reduction="none")
    assert torch.equal(rows[ignored], torch.zeros(3, dtype=rows.dtype))
    # CE agrees at k = 1, alpha = 0, tau = 1, with and without a class weight; an index other
    # than -100 (here a real class) works too.
    weight = torch.rand(CLASSES, dtype=torch.float64) + 0.1
    finite = scores.nan_to_num()
    for options in ({}, {"weight": weight}):
        ours = smooth_topk_svm(finite, marked, 1, 1.0, 0.0, **options)
        torch.testing.assert_close(ours, F.cross_entropy(finite, marked, **options))
        ours = smooth_topk_svm(finite, labels, 1, 1.0, 0.0, ignore_index=2, **options)
        torch.testing.assert_close(ours, F.cross_entropy(finite, labels, ignore_index=2, **options))


def test_every_sample_ignored_gives_nan_mean_and_zero_sum():
    scores, _ = inputs()
    labels = torch.full((BATCH,), -100)
    assert torch.isnan(smooth_topk_svm(scores, labels, 2))
    assert smooth_topk_svm(scores, labels, 2, reduction="sum") == 0


def test_labels_out_of_range_still_raise_with_ignore_index():
    scores, labels = inputs()
    with pytest.raises(ValueError, match="ignore_index=-100"):
        smooth_topk_svm(scores, labels.masked_fill(labels == labels[0], -1), 2)


@pytest.mark.usefixtures("implementation")
@pytest.mark.parametrize("k", [1, 2, 4])
def test_per_sample_margin_matches_brute_force(k):
    scores, labels = inputs(1)
    alpha = torch.rand(BATCH, dtype=torch.float64) * 2
    alpha[0] = 0.0
    rows = smooth_topk_svm(scores, labels, k, 0.3, alpha, reduction="none")
    expected = torch.stack(
        [brute_force_loss(scores[i], int(labels[i]), k, 0.3, float(alpha[i])) for i in range(BATCH)]
    )
    torch.testing.assert_close(rows, expected, rtol=1e-9, atol=1e-12)
    # The same in float32 (the kernel and the PyTorch paths take the margin per row).
    rows32 = smooth_topk_svm(scores.float(), labels, k, 0.3, alpha.float(), reduction="none")
    torch.testing.assert_close(rows32.double(), expected, rtol=1e-5, atol=1e-6)


def test_per_sample_margin_gradient_and_rerouted_rows(implementation):
    """The gradcheck takes the first 4 rows in Triton's interpreter (the wide row among them)."""
    scores, labels = inputs(2)
    scores[3] *= 500  # a wide row that the power sums reject: it is recomputed with its margin
    alpha = torch.rand(BATCH, dtype=torch.float64)
    rows = slice(0, 4) if implementation == "triton" else slice(None)
    leaf = scores[rows].clone().requires_grad_()
    torch.autograd.gradcheck(
        lambda s: smooth_topk_svm(s, labels[rows], 3, 0.7, alpha[rows]), (leaf,)
    )
    rows = smooth_topk_svm(scores, labels, 3, 0.05, alpha, reduction="none")
    expected = [brute_force_loss(scores[i], int(labels[i]), 3, 0.05, float(alpha[i])) for i in (3,)]
    torch.testing.assert_close(rows[3], expected[0], rtol=1e-9, atol=1e-12)


def test_hard_hinge_per_sample_margin_and_weights():
    scores, labels = inputs(3)
    alpha = torch.rand(BATCH, dtype=torch.float64)
    weight = torch.rand(CLASSES, dtype=torch.float64)
    rows = torch.stack(
        [
            hard_topk_svm(scores[i : i + 1], labels[i : i + 1], 2, float(alpha[i]))
            for i in range(BATCH)
        ]
    )
    ours = hard_topk_svm(scores, labels, 2, alpha, weight=weight)
    torch.testing.assert_close(ours, (weight[labels] * rows).sum() / weight[labels].sum())


@pytest.mark.parametrize("module", [SmoothTopkSVM, HardTopkSVM])
def test_module_per_class_margin_and_weight_are_buffers(module):
    scores, labels = inputs(4)
    class_alpha = torch.rand(CLASSES, dtype=torch.float64)
    weight = torch.rand(CLASSES, dtype=torch.float64) + 0.1
    options = {"tau": 0.5} if module is SmoothTopkSVM else {}
    criterion = module(k=2, alpha=class_alpha, weight=weight, **options)
    functional = smooth_topk_svm if module is SmoothTopkSVM else hard_topk_svm
    expected = functional(scores, labels, 2, *options.values(), class_alpha[labels], weight=weight)
    torch.testing.assert_close(criterion(scores, labels), expected)
    assert set(criterion.state_dict()) == {"alpha", "weight"}
    moved = criterion.to(torch.float32)
    assert moved.weight.dtype == torch.float32
    for clone in (pickle.loads(pickle.dumps(criterion)), copy.deepcopy(criterion)):
        torch.testing.assert_close(clone(scores.float(), labels), criterion(scores.float(), labels))
    per_sample = torch.full((BATCH,), 0.25)
    torch.testing.assert_close(
        criterion(scores, labels, alpha=per_sample),
        functional(scores, labels, 2, *options.values(), per_sample, weight=weight.float()),
    )
    with pytest.raises(ValueError, match="per-class margins"):
        criterion(scores[:, :5], labels.clamp(max=4))


@pytest.mark.parametrize(
    "options,message",
    [
        ({"alpha": torch.ones(BATCH + 1)}, "alpha must have shape"),
        ({"alpha": -torch.ones(BATCH)}, "alpha must hold finite values >= 0"),
        ({"weight": torch.ones(CLASSES, 2)}, "weight must have shape"),
        ({"weight": torch.full((CLASSES,), float("nan"))}, "weight must hold finite"),
        ({"sample_weight": torch.ones(3).long()}, "sample_weight must be a floating-point"),
    ],
)
def test_bad_weights_and_margins_raise(options, message):
    scores, labels = inputs()
    with pytest.raises(ValueError, match=message):
        smooth_topk_svm(scores, labels, 2, **options)
