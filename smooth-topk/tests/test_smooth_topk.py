"""The smooth top-k loss against an independent brute-force reference, and its properties."""

import copy
import itertools
import math
import pickle

import pytest
import torch
import torch.nn.functional as F

from brute_force import brute_force_batch
from implementations import (  # noqa: F401  (fixtures, used by name)
    compiled_kernel,
    implementation,
    triton_kernels,
)
from smooth_topk import HardTopkSVM, SmoothTopkSVM, cpu_kernel
from smooth_topk.functional import hard_topk_svm, log_esp, smooth_topk_svm


def assert_gradient_close(grad32: torch.Tensor, grad64: torch.Tensor) -> None:
    """Within 1e-3 of the largest float64 entry (floored at float32's smallest normal number)."""
    tolerance = max(1e-3 * grad64.abs().max().item(), torch.finfo(torch.float32).tiny)
    assert (grad32.double() - grad64).abs().max().item() <= tolerance


@pytest.mark.parametrize("n", [5, 9, 12])
@pytest.mark.parametrize("tau", [1e-2, 0.1, 1.0, 10.0])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.usefixtures("implementation")
def test_matches_brute_force(n, tau, alpha):
    generator = torch.Generator().manual_seed(n)
    for k in range(1, n):
        for scale in (1.0, 10.0, 100.0):
            scores = torch.randn(3, n, generator=generator, dtype=torch.float64) * scale
            labels = torch.randint(0, n, (3,), generator=generator)
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
@pytest.mark.usefixtures("implementation")
def test_gradcheck_float64(k):
    generator = torch.Generator().manual_seed(k)
    scores = torch.randn(4, 11, generator=generator, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 11, (4,), generator=generator)
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


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.usefixtures("implementation")
def test_half_input_computed_in_float32(dtype):
    scores = torch.randn(16, 40).to(dtype).requires_grad_()
    labels = torch.randint(0, 40, (16,))
    loss = smooth_topk_svm(scores, labels, k=5, tau=1.0)
    assert loss.dtype == torch.float32
    expected = smooth_topk_svm(scores.detach().float(), labels, k=5, tau=1.0)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert scores.grad.dtype == dtype


def test_float64_stays_float64():
    loss = smooth_topk_svm(torch.randn(4, 10, dtype=torch.float64), torch.zeros(4).long(), 3)
    assert loss.dtype == torch.float64


@pytest.mark.usefixtures("implementation")
def test_reductions_and_weight():
    scores = torch.randn(10, 20)
    labels = torch.randint(0, 20, (10,))
    weight = torch.rand(10)
    per_sample = smooth_topk_svm(scores, labels, 5, 1.0, 1.0, reduction="none")
    assert per_sample.shape == (10,)
    torch.testing.assert_close(
        smooth_topk_svm(scores, labels, 5, reduction="sum"), per_sample.sum()
    )
    torch.testing.assert_close(smooth_topk_svm(scores, labels, 5), per_sample.mean())
    weighted = smooth_topk_svm(scores, labels, 5, sample_weight=weight)
    torch.testing.assert_close(weighted, (per_sample * weight).mean())


def test_modules_pickle_deepcopy_and_move():
    criterion = SmoothTopkSVM(k=3, tau=0.5, alpha=1.0, reduction="sum")
    scores = torch.randn(4, 10)
    labels = torch.randint(0, 10, (4,))
    for clone in (pickle.loads(pickle.dumps(criterion)), copy.deepcopy(criterion)):
        torch.testing.assert_close(clone(scores, labels), criterion(scores, labels))
    assert criterion.to("cpu") is criterion
    assert list(criterion.state_dict()) == []  # no per-class state
    assert "k=3" in repr(criterion)
    hard = pickle.loads(pickle.dumps(HardTopkSVM(k=2)))
    assert hard(scores, labels) >= 0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"k": 0}, "k must be"),
        ({"k": 10}, "k must be smaller than the number of classes"),
        ({"tau": 0.0}, "tau must be"),
        ({"tau": -1.0}, "tau must be"),
        ({"alpha": -0.5}, "alpha must be"),
        ({"reduction": "avg"}, "reduction must be one of"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, message):
    arguments = {"k": 2, "tau": 1.0, "alpha": 1.0, "reduction": "mean", **kwargs}
    with pytest.raises(ValueError, match=message):
        smooth_topk_svm(torch.randn(3, 10), torch.zeros(3).long(), **arguments)


def test_bad_inputs_raise():
    scores, labels = torch.randn(3, 10), torch.zeros(3).long()
    with pytest.raises(ValueError, match="labels must lie in"):
        smooth_topk_svm(scores, torch.tensor([0, 10, 1]), k=2)
    with pytest.raises(ValueError, match="labels must lie in"):
        smooth_topk_svm(scores, torch.tensor([0, -1, 1]), k=2)
    with pytest.raises(ValueError, match="labels must have shape"):
        smooth_topk_svm(scores, torch.zeros(4).long(), k=2)
    with pytest.raises(ValueError, match="labels must be an int64"):
        smooth_topk_svm(scores, torch.zeros(3), k=2)
    with pytest.raises(ValueError, match="logits must have shape"):
        smooth_topk_svm(torch.randn(3, 10, 2), labels, k=2)
    with pytest.raises(ValueError, match="logits must be a floating-point"):
        smooth_topk_svm(torch.zeros(3, 10).long(), labels, k=2)
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        smooth_topk_svm(scores, labels, k=2, sample_weight=torch.ones(5))
    with pytest.raises(ValueError, match="weight must have shape"):
        smooth_topk_svm(scores, labels, k=2, weight=torch.ones(3))
    with pytest.raises(ValueError, match="tau must be"):
        SmoothTopkSVM(k=2, tau=0)


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@CUDA
@pytest.mark.parametrize("k", [1, 5])
def test_cuda_matches_cpu(k):
    scores = torch.randn(64, 200, dtype=torch.float64) * 5
    labels = torch.randint(0, 200, (64,))
    cpu = smooth_topk_svm(scores, labels, k, 0.1, 1.0, reduction="none")
    gpu_scores = scores.float().cuda().requires_grad_()
    gpu = smooth_topk_svm(gpu_scores, labels.cuda(), k, 0.1, 1.0, reduction="none")
    torch.testing.assert_close(gpu.double().cpu(), cpu, rtol=1e-4, atol=1e-5)
    gpu.sum().backward()
    assert torch.isfinite(gpu_scores.grad).all()


@CUDA
def test_cuda_input_checks_do_not_synchronise():
    from smooth_topk.checks import check_inputs

    scores = torch.randn(64, 100, device="cuda")
    labels = torch.randint(0, 100, (64,), device="cuda")
    labels[3] = -100
    weight = torch.rand(100, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        batch = check_inputs(scores, labels, 5, torch.rand(64, device="cuda"), weight, None, -100)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert batch.labels[3].item() == 0 and bool(batch.ignored[3])


@CUDA
def test_cuda_bf16_autocast_module():
    layer = torch.nn.Linear(32, 100).cuda()
    criterion = SmoothTopkSVM(k=5, tau=1.0).cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = layer(torch.randn(16, 32, device="cuda"))
        loss = criterion(logits, torch.randint(0, 100, (16,), device="cuda"))
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all()


def test_cpu_bf16_autocast_region_computes_in_float32():
    layer = torch.nn.Linear(16, 30)
    labels = torch.randint(0, 30, (8,))
    inputs = torch.randn(8, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(inputs)
        loss = SmoothTopkSVM(k=5, tau=0.5)(logits, labels)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    torch.testing.assert_close(loss, smooth_topk_svm(logits.float(), labels, k=5, tau=0.5))
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all()


def _path_loss_and_grad(function, scores, labels, k, tau):
    scores = scores.clone().requires_grad_()
    loss, safe = function.apply(scores, labels, k, tau, 1.0)
    loss.sum().backward()
    return loss.detach(), scores.grad, safe


@pytest.mark.parametrize("k,tau", [(2, 1.0), (5, 0.1), (5, 1.0), (10, 0.5)])
def test_power_sum_and_tree_paths_agree_and_power_sums_take_ordinary_rows(k, tau):
    from smooth_topk.linear_tree import SmoothTopkLinearTree
    from smooth_topk.power_sums import SmoothTopkPowerSums

    generator = torch.Generator().manual_seed(k)
    scores = torch.randn(64, 300, generator=generator)  # the paper's benchmark distribution
    labels = torch.randint(0, 300, (64,), generator=generator)
    loss_ps, grad_ps, safe_ps = _path_loss_and_grad(SmoothTopkPowerSums, scores, labels, k, tau)
    assert safe_ps.all()  # the fast path takes every such row

    spread = scores * 3  # wider scores: some rows are left to the tree, the rest must agree
    loss_ps, grad_ps, safe_ps = _path_loss_and_grad(SmoothTopkPowerSums, spread, labels, k, tau)
    loss_tree, grad_tree, safe_tree = _path_loss_and_grad(
        SmoothTopkLinearTree, spread, labels, k, tau
    )
    both = safe_ps & safe_tree
    assert both.any()
    torch.testing.assert_close(loss_ps[both], loss_tree[both], rtol=1e-5, atol=1e-6)
    difference = (grad_ps - grad_tree)[both].abs().max()
    assert difference <= 1e-5 * grad_tree[both].abs().max()


def test_power_sums_reject_rows_they_cannot_prove_accurate():
    from smooth_topk.power_sums import SmoothTopkPowerSums

    scores = torch.zeros(2, 1000)
    scores[0] = torch.randn(1000)
    scores[1, 0] = 30.0  # one class far ahead: sigma_k is a tiny remainder of the power sums
    labels = torch.tensor([5, 5])
    _, safe = SmoothTopkPowerSums.apply(scores, labels, 5, 0.1, 1.0)
    assert safe.tolist() == [True, False]
    # The public function still gets that row right (via the tree or log space).
    loss32 = smooth_topk_svm(scores, labels, 5, 0.1, 1.0, reduction="none")
    loss64 = smooth_topk_svm(scores.double(), labels, 5, 0.1, 1.0, reduction="none")
    torch.testing.assert_close(loss32.double(), loss64, rtol=1e-4, atol=1e-6)


@pytest.mark.usefixtures("implementation")
def test_second_backward_with_retained_graph_is_still_exact():
    scores = torch.randn(8, 50, requires_grad=True)
    labels = torch.randint(0, 50, (8,))
    loss = smooth_topk_svm(scores, labels, 5, 0.5, 1.0)
    (first,) = torch.autograd.grad(loss, scores, retain_graph=True)
    (second,) = torch.autograd.grad(loss, scores)
    torch.testing.assert_close(first, second)


def test_newton_solve_keeps_to_the_input_device():
    """Device mixing (a CPU constant meeting a CUDA tensor) shows up on the meta device too."""
    from smooth_topk.power_sums import _newton

    out = _newton(torch.empty(4, 5, dtype=torch.float64, device="meta"))
    assert out.device.type == "meta" and out.shape == (2, 4, 5)


def test_newton_solve_matches_elementary_symmetric_polynomials():
    from smooth_topk.power_sums import _newton

    e = torch.rand(3, 7, dtype=torch.float64)
    power_sums = torch.stack([(e**t).sum(1) for t in range(1, 5)], 1)
    sigma = _newton(power_sums)[0]
    expected = log_esp(e.log(), 4)[:, 1:].exp()
    torch.testing.assert_close(sigma, expected)


def test_tree_forward_and_log_esp_keep_to_the_input_device():
    from smooth_topk.linear_tree import SmoothTopkLinearTree

    scores = torch.empty(4, 30, device="meta")
    labels = torch.zeros(4, dtype=torch.int64, device="meta")
    loss, safe = SmoothTopkLinearTree.apply(scores, labels, 5, 1.0, 1.0)
    assert loss.device.type == "meta" and safe.device.type == "meta"
    assert log_esp(torch.empty(2, 9, device="meta"), 3).shape == (2, 4)


def _loss_and_grad(scores, labels, k, tau, weight, alpha=1.0):
    scores = scores.clone().requires_grad_()
    loss = smooth_topk_svm(scores, labels, k, tau, alpha, reduction="none")
    (loss * weight).sum().backward()
    return loss.detach(), scores.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "k,tau,spread",
    [
        (1, 1.0, 2),
        (1, 0.1, 2),
        (2, 0.5, 2),
        (5, 0.1, 2),
        (5, 1.0, 2),
        (10, 0.5, 2),
        (5, 0.01, 5),
        (3, 1e-3, 50),
    ],
)
@pytest.mark.usefixtures("compiled_kernel")
def test_compiled_kernel_agrees_with_the_pytorch_paths(k, tau, spread, dtype):
    """Spread 2 sends some rows to the kernel's sequential products, spread 5 with tau 0.01
    most of them (the power sums cannot prove those rows accurate), spread 50 with tau 1e-3
    most to log space."""
    from smooth_topk.linear_tree import SmoothTopkLinearTree
    from smooth_topk.power_sums import SmoothTopkPowerSums

    generator = torch.Generator().manual_seed(k)
    scores = (torch.randn(48, 300, generator=generator) * spread).to(dtype)
    labels = torch.randint(0, 300, (48,), generator=generator)
    weight = torch.rand(48, generator=generator, dtype=dtype)
    # The kernel keeps every row, so the comparison below is of the kernel's own results.
    assert cpu_kernel.SmoothTopkCompiled.apply(scores, labels, k, tau, 1.0, False)[1].all()
    if spread > 2:
        assert SmoothTopkPowerSums.apply(scores, labels, k, tau, 1.0)[1].float().mean() < 0.5
    if spread > 5:  # the linear-space tree has the range of the kernel's linear products
        assert SmoothTopkLinearTree.apply(scores, labels, k, tau, 1.0)[1].float().mean() < 0.5
    compiled = _loss_and_grad(scores, labels, k, tau, weight)
    with cpu_kernel.disabled():
        portable = _loss_and_grad(scores, labels, k, tau, weight)
    tolerance = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(compiled[0], portable[0], rtol=tolerance, atol=tolerance)
    largest = portable[1].abs().max()
    assert (compiled[1] - portable[1]).abs().max() <= tolerance * largest


@pytest.mark.usefixtures("compiled_kernel")
def test_compiled_kernel_takes_hard_rows_and_flags_only_non_finite_ones():
    scores = torch.randn(8, 1000, dtype=torch.float64)
    labels = torch.full((8,), 5)
    scores[1, 0] = 30.0  # one class far ahead: the power sums cancel, sequential products do not
    scores[2, 7] = float("nan")
    scores[3, 9] = float("inf")
    scores[4, 9] = float("-inf")
    scores[5, 5] = 1e4  # the label far ahead of every other class
    scores[7] *= 1e4  # sigma_k below 1e-300: only log space holds it
    loss, safe = cpu_kernel.SmoothTopkCompiled.apply(scores, labels, 5, 0.1, 1.0, False)
    assert safe.tolist() == [True, True, False, False, False, True, True, True]
    kept = torch.tensor([0, 1, 5, 6, 7])
    with cpu_kernel.disabled():
        expected = smooth_topk_svm(scores[kept], labels[kept], 5, 0.1, 1.0, reduction="none")
    torch.testing.assert_close(loss[kept], expected, rtol=1e-10, atol=1e-10)


@pytest.mark.usefixtures("implementation")
def test_result_does_not_depend_on_the_number_of_threads():
    scores = torch.randn(64, 500, requires_grad=True)
    labels = torch.randint(0, 500, (64,))
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            scores.grad = None
            loss = smooth_topk_svm(scores, labels, 5, 0.1, 1.0)
            loss.backward()
            results.append((loss.detach(), scores.grad.clone()))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_failed_kernel_build_warns_and_falls_back(monkeypatch):
    from torch.utils import cpp_extension

    def failing_build(**_):
        raise RuntimeError(
            "Error building extension 'x': [1/2] c++ -c smooth_topk_cpu.cpp\n"
            "/bin/sh: 1: c++: not found\nninja: build stopped: subcommand failed.\n"
        )

    monkeypatch.setattr(cpp_extension, "load", failing_build)
    monkeypatch.delenv("SMOOTH_TOPK_NO_KERNEL", raising=False)
    monkeypatch.delenv("SMOOTH_TOPK_IMPL", raising=False)
    with pytest.warns(RuntimeWarning, match=r"could not be built \(/bin/sh: 1: c\+\+: not found\)"):
        assert cpu_kernel.load.__wrapped__() is None


def test_kernel_can_be_switched_off_by_environment(monkeypatch, recwarn):
    for variable, value in (("SMOOTH_TOPK_IMPL", "pytorch"), ("SMOOTH_TOPK_NO_KERNEL", "1")):
        with monkeypatch.context() as patch:
            patch.setenv(variable, value)
            assert cpu_kernel.load.__wrapped__() is None
            assert "PyTorch implementation" in cpu_kernel.status()
    assert not recwarn.list


def test_implementation_switch_values(monkeypatch):
    scores, labels = torch.randn(4, 12), torch.randint(0, 12, (4,))
    monkeypatch.setenv("SMOOTH_TOPK_IMPL", "fast")
    with pytest.raises(ValueError, match="SMOOTH_TOPK_IMPL='fast' is not one of auto, triton"):
        smooth_topk_svm(scores, labels, 3)
    monkeypatch.setenv("SMOOTH_TOPK_IMPL", "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")  # CPU tensors: only the interpreter runs them
    with pytest.raises(ValueError, match="SMOOTH_TOPK_IMPL=triton, but the Triton kernels cannot"):
        smooth_topk_svm(scores, labels, 3)
    monkeypatch.setenv("SMOOTH_TOPK_IMPL", "pytorch")
    with cpu_kernel.disabled():
        expected = smooth_topk_svm(scores.double(), labels, 3)
    torch.testing.assert_close(smooth_topk_svm(scores.double(), labels, 3), expected)
    if cpu_kernel.load() is not None:
        monkeypatch.setenv("SMOOTH_TOPK_IMPL", "cpu_kernel")
        with pytest.raises(ValueError, match="cannot serve these scores .*k=11"):
            smooth_topk_svm(scores, labels, 11)
        torch.testing.assert_close(smooth_topk_svm(scores.double(), labels, 3), expected)


@pytest.mark.usefixtures("compiled_kernel")
def test_disabled_block_switches_to_the_pytorch_paths_and_back():
    scores = torch.zeros(2, 5)
    with cpu_kernel.disabled():
        assert not cpu_kernel.usable(scores, 2)
    assert cpu_kernel.usable(scores, 2)
    assert not cpu_kernel.usable(scores, cpu_kernel.MAX_K + 1)
    assert not cpu_kernel.usable(scores.half(), 2)


@pytest.mark.usefixtures("implementation")
def test_softplus_value_and_gradient_everywhere_including_zero():
    from smooth_topk.softplus import softplus

    z = torch.tensor([-800.0, -30.0, -1e-300, 0.0, 1e-300, 2.0, 40.0, 800.0], dtype=torch.float64)
    z.requires_grad_()
    value = softplus(z)
    (grad,) = torch.autograd.grad(value.sum(), z)
    exact = [0.0, 9.357622968839e-14, math.log(2), math.log(2), math.log(2), 2.1269280110429727]
    assert value[:6].tolist() == pytest.approx(exact, rel=1e-12)
    assert value[6].item() == 40.0 and value[7].item() == 800.0
    torch.testing.assert_close(grad, torch.sigmoid(z.detach()))


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


def random_cases(seed, count, classes, max_k, alphas, log10_spread, batch, dtype):
    """Seeded random configurations: (description, scores, labels, k, tau, alpha), with tau in
    [1e-3, 10], score spreads 10 ** log10_spread and, in half the cases, a tie at the top."""
    generator = torch.Generator().manual_seed(seed)

    def draw(choices):
        return choices[int(torch.randint(len(choices), (1,), generator=generator))]

    for _ in range(count):
        n = draw(classes)
        k = draw(list(range(1, min(n - 1, max_k) + 1)))
        tau = 10 ** float(torch.empty(1).uniform_(-3, 1, generator=generator))
        alpha = draw(alphas)
        spread = 10 ** float(torch.empty(1).uniform_(*log10_spread, generator=generator))
        scores = torch.randn(batch, n, generator=generator, dtype=dtype) * spread
        if draw([False, True]):
            scores[:, 1] = scores[:, 0]  # ties
        labels = torch.randint(0, n, (batch,), generator=generator)
        description = f"classes={n} k={k} tau={tau:.3g} alpha={alpha} spread={spread:.3g}"
        yield description, scores, labels, k, tau, alpha


@pytest.mark.usefixtures("compiled_kernel")
def test_kernel_and_pytorch_paths_agree_on_random_configurations():
    """A seeded sweep over classes, k, tau, alpha, score spread and ties, in float64."""
    cases = random_cases(
        2018, 200, [2, 3, 4, 6, 11, 37, 200], 10, [0.0, 1.0, 2.5], (-2, 3), 4, torch.float64
    )
    ones = torch.ones(4, dtype=torch.float64)
    for case, scores, labels, k, tau, alpha in cases:
        kernel = _loss_and_grad(scores, labels, k, tau, ones, alpha)
        with cpu_kernel.disabled():
            portable = _loss_and_grad(scores, labels, k, tau, ones, alpha)
        for ours, theirs in zip(kernel, portable, strict=True):
            # Absolute slack relative to the largest entry: where a gradient entry is a
            # difference of two near-equal probabilities, the PyTorch paths round it to 0.
            torch.testing.assert_close(
                ours,
                theirs,
                rtol=1e-9,
                atol=max(1e-12, 1e-10 * theirs.abs().max().item()),
                msg=lambda message, case=case: f"{case}: {message}",
            )


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
        loss32, grad32 = _loss_and_grad(scores, labels, k, tau, ones, alpha)
        with monkeypatch.context() as patch:
            if implementation_name == "triton":
                patch.setenv("SMOOTH_TOPK_IMPL", "pytorch")
            loss64, grad64 = _loss_and_grad(scores.double(), labels, k, tau, ones.double(), alpha)
        relative = ((loss32.double() - loss64).abs() / loss64.abs().clamp(min=1e-30)).max()
        assert relative <= 1e-4, case
        assert_gradient_close(grad32, grad64)


def test_top1_path_keeps_to_the_input_device():
    from smooth_topk.functional import _smooth_top1

    scores = torch.empty(4, 30, device="meta")
    labels = torch.zeros(4, dtype=torch.int64, device="meta")
    assert _smooth_top1(scores, labels, 0.5, 1.0).device.type == "meta"
