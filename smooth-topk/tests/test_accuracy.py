"""The loss against an independent brute-force reference and float64, and its properties:
through every implementation (the `implementation` fixture)."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from brute_force import brute_force_batch
from random_cases import loss_and_grad, random_cases
from smooth_topk.functional import hard_topk_svm, log_esp, smooth_topk_svm


def assert_gradient_close(grad32: torch.Tensor, grad64: torch.Tensor) -> None:
    """Within 1e-3 of the largest float64 entry (floored at float32's smallest normal number)."""
    tolerance = max(1e-3 * grad64.abs().max().item(), torch.finfo(torch.float32).tiny)
    assert (grad32.double() - grad64).abs().max().item() <= tolerance


SCALES = (1.0, 10.0, 100.0)


@pytest.mark.parametrize("n", [5, 9, 12])
@pytest.mark.parametrize("tau", [1e-2, 0.1, 1.0, 10.0])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_matches_brute_force(n, tau, alpha, implementation):
    """Every k at three score scales; Triton's interpreter takes one scale per k, in turn (the
    routes each scale sends rows to are all taken in test_triton.py)."""
    generator = torch.Generator().manual_seed(n)
    for k in range(1, n):
        for scale in SCALES:
            scores = torch.randn(3, n, generator=generator, dtype=torch.float64) * scale
            labels = torch.randint(0, n, (3,), generator=generator)
            if implementation == "triton" and scale != SCALES[k % len(SCALES)]:
                continue  # drawn all the same, so that each case keeps its scores
            reference = brute_force_batch(scores, labels, k, tau, alpha)
            loss64 = smooth_topk_svm(scores, labels, k, tau, alpha, reduction="none")
            torch.testing.assert_close(loss64, reference, rtol=1e-9, atol=1e-9)

            scores32 = scores.float().requires_grad_()
            loss32 = smooth_topk_svm(scores32, labels, k, tau, alpha, reduction="none")
            torch.testing.assert_close(loss32.double(), reference, rtol=1e-4, atol=1e-5)
            scores64 = scores.clone().requires_grad_()
            smooth_topk_svm(scores64, labels, k, tau, alpha, reduction="sum").backward()
            loss32.sum().backward()
            assert_gradient_close(scores32.grad, scores64.grad)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_gradcheck_float64(k, implementation):
    """Four rows; two in Triton's interpreter (each gradcheck evaluates the loss twice per
    score)."""
    generator = torch.Generator().manual_seed(k)
    scores = torch.randn(4, 11, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 11, (4,), generator=generator)
    rows = 2 if implementation == "triton" else 4
    scores, labels = scores[:rows].clone().requires_grad_(), labels[:rows]
    for tau in (0.3, 2.0):
        assert torch.autograd.gradcheck(
            lambda s, tau=tau: smooth_topk_svm(s, labels, k, tau, 1.0, reduction="sum"), (scores,)
        )


@pytest.mark.usefixtures("implementation")
def test_brute_force_gradient_matches_autograd_of_reference():
    generator = torch.Generator().manual_seed(3)
    scores = torch.randn(2, 8, generator=generator, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([1, 6])
    brute_force_batch(scores, labels, 3, 0.5, 1.0).sum().backward()
    expected = scores.grad.clone()
    scores.grad = None
    smooth_topk_svm(scores, labels, 3, 0.5, 1.0, reduction="sum").backward()
    torch.testing.assert_close(scores.grad, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.usefixtures("implementation")
def test_k1_alpha0_tau1_is_cross_entropy():
    scores = torch.randn(32, 50, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 50, (32,))
    ours = smooth_topk_svm(scores, labels, k=1, tau=1.0, alpha=0.0)
    torch.testing.assert_close(ours, F.cross_entropy(scores, labels), rtol=1e-12, atol=1e-12)
    (grad_ours,) = torch.autograd.grad(ours, scores)
    (grad_ce,) = torch.autograd.grad(F.cross_entropy(scores, labels), scores)
    torch.testing.assert_close(grad_ours, grad_ce)


@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.usefixtures("implementation")
def test_small_tau_approaches_hard_hinge(k):
    scores = torch.randn(64, 30, dtype=torch.float64) * 3
    labels = torch.randint(0, 30, (64,))
    smooth = smooth_topk_svm(scores, labels, k, 1e-3, 1.0, reduction="none")
    hard = hard_topk_svm(scores, labels, k, 1.0, reduction="none")
    assert (smooth - hard).abs().max() <= 1e-2


def test_hard_hinge_definition():
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    # label 4 (score 1): the 2nd largest other score is 4 -> 1 + (4 - 1) / 2
    assert hard_topk_svm(scores, torch.tensor([4]), k=2).item() == pytest.approx(2.5)
    # label 0 (score 5): the 2nd largest other is 3 -> max(0, 1 + (3 - 5) / 2) = 0
    assert hard_topk_svm(scores, torch.tensor([0]), k=2).item() == 0.0


@pytest.mark.usefixtures("implementation")
def test_invariant_to_class_permutation_and_shift():
    scores = torch.randn(8, 20, dtype=torch.float64)
    labels = torch.randint(0, 20, (8,))
    permutation = torch.randperm(20)
    inverse = torch.argsort(permutation)
    loss = smooth_topk_svm(scores, labels, 5, 0.5, 1.0, reduction="none")
    permuted = smooth_topk_svm(scores[:, permutation], inverse[labels], 5, 0.5, 1.0, "none")
    shifted = smooth_topk_svm(scores + 123.0, labels, 5, 0.5, 1.0, reduction="none")
    torch.testing.assert_close(permuted, loss)
    torch.testing.assert_close(shifted, loss)


STRESS_CASES = [
    # (classes, k, scale, tau)
    (10_000, 5, 1.0, 0.1),
    (10_000, 50, 10.0, 1.0),
    (1_000, 50, 1e4, 1e-3),
    (1_000, 5, 1e4, 1e-3),
    (1_000, 5, 100.0, 1e-3),
    (100, 5, 1e4, 10.0),
    (100, 20, 30.0, 1e-2),
]


@pytest.mark.parametrize("classes,k,scale,tau", STRESS_CASES)
@pytest.mark.usefixtures("implementation")
def test_float32_stable_against_float64(classes, k, scale, tau, request, monkeypatch):
    implementation_name = request.getfixturevalue("implementation")
    if implementation_name == "triton" and classes * k > 100_000:
        pytest.skip("minutes in Triton's interpreter; test_triton.py covers k > 10")
    generator = torch.Generator().manual_seed(classes + k)
    scores = (torch.randn(6, classes, generator=generator) * scale).float()
    scores[1] = 7.0  # constant row
    scores[2, : k + 3] = scores[2].max()  # ties at the top
    scores[3, labels_at := 5] = scores[3].max() + 10 * scale  # label far ahead
    labels = torch.randint(0, classes, (6,), generator=generator)
    labels[3] = labels_at

    s32 = scores.clone().requires_grad_()
    s64 = scores.double().requires_grad_()
    loss32 = smooth_topk_svm(s32, labels, k, tau, 1.0, reduction="none")
    loss32.sum().backward()
    if implementation_name == "triton":  # float64 rows take the interpreter's slowest path
        monkeypatch.setenv("SMOOTH_TOPK_IMPL", "pytorch")
    loss64 = smooth_topk_svm(s64, labels, k, tau, 1.0, reduction="none")
    loss64.sum().backward()
    assert torch.isfinite(loss32).all() and torch.isfinite(s32.grad).all()
    assert torch.isfinite(loss64).all() and torch.isfinite(s64.grad).all()
    torch.testing.assert_close(loss32.double(), loss64.detach(), rtol=1e-4, atol=1e-6)
    assert_gradient_close(s32.grad, s64.grad)


def test_log_esp_matches_enumeration_and_absent_entries():
    x = torch.randn(3, 7, dtype=torch.float64)
    out = log_esp(x, 4)
    for row in range(3):
        for j in range(5):
            subsets = list(itertools.combinations(range(7), j))
            expected = torch.logsumexp(torch.stack([x[row, list(a)].sum() for a in subsets]), 0)
            torch.testing.assert_close(out[row, j], expected)
    with_absent = torch.cat([x, torch.full((3, 2), float("-inf"), dtype=torch.float64)], 1)
    torch.testing.assert_close(log_esp(with_absent, 4), out)
    assert torch.isneginf(log_esp(x[:, :2], 3)[:, 3]).all()  # sigma_3 of two entries is 0


def test_log_esp_gradient_with_absent_entries_is_finite():
    x = torch.randn(2, 5, dtype=torch.float64)
    x[:, 3:] = float("-inf")
    x.requires_grad_()
    log_esp(x, 3)[:, :3].sum().backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[:, 3:] == 0).all()


@pytest.mark.usefixtures("implementation")
def test_tied_scores_with_zero_margin_in_log_space_get_the_exact_gradient():
    """Ties and alpha = 0 make z exactly 0 on a row that only log space can represent."""
    scores = torch.tensor([[-36.0, -36.0, 86.0]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0])
    smooth_topk_svm(scores, labels, k=2, tau=0.005, alpha=0.0, reduction="sum").backward()
    reference = scores.detach().clone().requires_grad_()
    brute_force_batch(reference, labels, 2, 0.005, 0.0).sum().backward()
    torch.testing.assert_close(scores.grad, reference.grad)
    torch.testing.assert_close(scores.grad, torch.tensor([[-0.25, 0.25, 0.0]], dtype=torch.float64))


@pytest.mark.usefixtures("implementation")
def test_float32_keeps_relative_precision_on_random_configurations(request, monkeypatch):
    """float32 against float64 on a seeded sweep, including losses far below 1e-5 (the label
    far ahead), where a cancellation would show as a large relative error.  Triton's interpreter
    takes the first 40 cases of up to 100 classes, with the PyTorch implementation as the float64
    reference."""
    implementation_name = request.getfixturevalue("implementation")
    cases = random_cases(
        7, 300, [2, 3, 5, 12, 100, 1000], 12, [0.0, 1.0], (-1, 4), 3, torch.float32
    )
    if implementation_name == "triton":
        cases = [case for case in cases if case[1].shape[1] <= 100][:40]
    ones = torch.ones(3)
    for case, scores, labels, k, tau, alpha in cases:
        loss32, grad32 = loss_and_grad(scores, labels, k, tau, ones, alpha)
        with monkeypatch.context() as patch:
            if implementation_name == "triton":
                patch.setenv("SMOOTH_TOPK_IMPL", "pytorch")
            loss64, grad64 = loss_and_grad(scores.double(), labels, k, tau, ones.double(), alpha)
        relative = ((loss32.double() - loss64).abs() / loss64.abs().clamp(min=1e-30)).max()
        assert relative <= 1e-4, case
        assert_gradient_close(grad32, grad64)
