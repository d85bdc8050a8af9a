"""The implementations against each other: the PyTorch paths, the compiled CPU kernel, the
switch that chooses (`dispatch`), and what each keeps to (threads, devices)."""

import math

import pytest
import torch

from random_cases import loss_and_grad, random_cases
from smooth_topk import cpu_kernel, dispatch
from smooth_topk.constants import CPU_KERNEL_MAX_K
from smooth_topk.functional import log_esp, smooth_topk_svm


def _pathloss_and_grad(function, scores, labels, k, tau):
    scores = scores.clone().requires_grad_()
    loss, safe = function.apply(scores, labels, k, tau, 1.0)
    loss.sum().backward()
    return loss.detach(), scores.grad, safe


@pytest.mark.parametrize("k,tau", [(2, 1.0), (5, 0.1), (5, 1.0), (10, 0.5)])
def test_power_sum_and_tree_paths_agree_and_power_sums_take_ordinary_rows(k, tau):
    from smooth_topk.pytorch.linear_tree import SmoothTopkLinearTree
    from smooth_topk.pytorch.power_sums import SmoothTopkPowerSums

    generator = torch.Generator().manual_seed(k)
    scores = torch.randn(64, 300, generator=generator)  # the paper's benchmark distribution
    labels = torch.randint(0, 300, (64,), generator=generator)
    loss_ps, grad_ps, safe_ps = _pathloss_and_grad(SmoothTopkPowerSums, scores, labels, k, tau)
    assert safe_ps.all()  # the fast path takes every such row

    spread = scores * 3  # wider scores: some rows are left to the tree, the rest must agree
    loss_ps, grad_ps, safe_ps = _pathloss_and_grad(SmoothTopkPowerSums, spread, labels, k, tau)
    loss_tree, grad_tree, safe_tree = _pathloss_and_grad(
        SmoothTopkLinearTree, spread, labels, k, tau
    )
    both = safe_ps & safe_tree
    assert both.any()
    torch.testing.assert_close(loss_ps[both], loss_tree[both], rtol=1e-5, atol=1e-6)
    difference = (grad_ps - grad_tree)[both].abs().max()
    assert difference <= 1e-5 * grad_tree[both].abs().max()


def test_power_sums_reject_rows_they_cannot_prove_accurate():
    from smooth_topk.pytorch.power_sums import SmoothTopkPowerSums

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
    from smooth_topk.pytorch.power_sums import _newton

    out = _newton(torch.empty(4, 5, dtype=torch.float64, device="meta"))
    assert out.device.type == "meta" and out.shape == (2, 4, 5)


def test_newton_solve_matches_elementary_symmetric_polynomials():
    from smooth_topk.pytorch.power_sums import _newton

    e = torch.rand(3, 7, dtype=torch.float64)
    power_sums = torch.stack([(e**t).sum(1) for t in range(1, 5)], 1)
    sigma = _newton(power_sums)[0]
    expected = log_esp(e.log(), 4)[:, 1:].exp()
    torch.testing.assert_close(sigma, expected)


def test_tree_forward_and_log_esp_keep_to_the_input_device():
    from smooth_topk.pytorch.linear_tree import SmoothTopkLinearTree

    scores = torch.empty(4, 30, device="meta")
    labels = torch.zeros(4, dtype=torch.int64, device="meta")
    loss, safe = SmoothTopkLinearTree.apply(scores, labels, 5, 1.0, 1.0)
    assert loss.device.type == "meta" and safe.device.type == "meta"
    assert log_esp(torch.empty(2, 9, device="meta"), 3).shape == (2, 4)


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
    from smooth_topk.pytorch.linear_tree import SmoothTopkLinearTree
    from smooth_topk.pytorch.power_sums import SmoothTopkPowerSums

    generator = torch.Generator().manual_seed(k)
    scores = (torch.randn(48, 300, generator=generator) * spread).to(dtype)
    labels = torch.randint(0, 300, (48,), generator=generator)
    weight = torch.rand(48, generator=generator, dtype=dtype)
    # The kernel keeps every row, so the comparison below is of the kernel's own results.
    assert cpu_kernel.CpuKernelLoss.apply(scores, labels, k, tau, 1.0, False)[1].all()
    if spread > 2:
        assert SmoothTopkPowerSums.apply(scores, labels, k, tau, 1.0)[1].float().mean() < 0.5
    if spread > 5:  # the linear-space tree has the range of the kernel's linear products
        assert SmoothTopkLinearTree.apply(scores, labels, k, tau, 1.0)[1].float().mean() < 0.5
    compiled = loss_and_grad(scores, labels, k, tau, weight)
    with dispatch.use("pytorch"):
        portable = loss_and_grad(scores, labels, k, tau, weight)
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
    loss, safe = cpu_kernel.CpuKernelLoss.apply(scores, labels, 5, 0.1, 1.0, False)
    assert safe.tolist() == [True, True, False, False, False, True, True, True]
    kept = torch.tensor([0, 1, 5, 6, 7])
    with dispatch.use("pytorch"):
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


def test_pytorch_selected_never_builds_the_kernel(monkeypatch, recwarn):
    def no_build():
        raise AssertionError("the CPU kernel was asked for")

    monkeypatch.setattr(cpu_kernel, "load", no_build)
    monkeypatch.setattr(cpu_kernel, "available", no_build)
    scores, labels = torch.randn(4, 12), torch.randint(0, 12, (4,))
    for variable, value in (("SMOOTH_TOPK_IMPL", "pytorch"), ("SMOOTH_TOPK_NO_KERNEL", "1")):
        with monkeypatch.context() as patch:
            patch.delenv("SMOOTH_TOPK_IMPL", raising=False)
            patch.setenv(variable, value)
            assert dispatch.implementation_in_use("cpu", 3) == "pytorch"
            assert torch.isfinite(smooth_topk_svm(scores, labels, 3))
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
    with dispatch.use("pytorch"):
        expected = smooth_topk_svm(scores.double(), labels, 3)
    torch.testing.assert_close(smooth_topk_svm(scores.double(), labels, 3), expected)
    if cpu_kernel.load() is not None:
        monkeypatch.setenv("SMOOTH_TOPK_IMPL", "cpu_kernel")
        with pytest.raises(ValueError, match="cannot serve these scores .*k=11"):
            smooth_topk_svm(scores, labels, 11)
        torch.testing.assert_close(smooth_topk_svm(scores.double(), labels, 3), expected)


@pytest.mark.usefixtures("compiled_kernel")
def test_a_block_can_use_the_pytorch_paths_and_go_back(monkeypatch):
    monkeypatch.delenv("SMOOTH_TOPK_IMPL", raising=False)
    scores = torch.zeros(2, 5)
    with dispatch.use("pytorch"):
        assert dispatch.choose(scores, 2) == "pytorch"
    assert dispatch.choose(scores, 2) == "cpu_kernel"
    assert dispatch.choose(scores.half(), 2) == "cpu_kernel"  # computed in float32
    assert dispatch.choose(scores, CPU_KERNEL_MAX_K + 1) == "pytorch"
    assert not cpu_kernel.usable("cpu", torch.float16, 2)


@pytest.mark.usefixtures("implementation")
def test_softplus_value_and_gradient_everywhere_including_zero():
    from smooth_topk.pytorch.softplus import softplus

    z = torch.tensor([-800.0, -30.0, -1e-300, 0.0, 1e-300, 2.0, 40.0, 800.0], dtype=torch.float64)
    z.requires_grad_()
    value = softplus(z)
    (grad,) = torch.autograd.grad(value.sum(), z)
    exact = [0.0, 9.357622968839e-14, math.log(2), math.log(2), math.log(2), 2.1269280110429727]
    assert value[:6].tolist() == pytest.approx(exact, rel=1e-12)
    assert value[6].item() == 40.0 and value[7].item() == 800.0
    torch.testing.assert_close(grad, torch.sigmoid(z.detach()))


@pytest.mark.usefixtures("compiled_kernel")
def test_kernel_and_pytorch_paths_agree_on_random_configurations():
    """A seeded sweep over classes, k, tau, alpha, score spread and ties, in float64."""
    cases = random_cases(
        2018, 200, [2, 3, 4, 6, 11, 37, 200], 10, [0.0, 1.0, 2.5], (-2, 3), 4, torch.float64
    )
    ones = torch.ones(4, dtype=torch.float64)
    for case, scores, labels, k, tau, alpha in cases:
        kernel = loss_and_grad(scores, labels, k, tau, ones, alpha)
        with dispatch.use("pytorch"):
            portable = loss_and_grad(scores, labels, k, tau, ones, alpha)
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
