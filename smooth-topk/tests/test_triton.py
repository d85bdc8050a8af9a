"""The Triton kernels: their routes, k up to 100, many classes, agreement with the CPU kernel,
half-precision input read directly, and (with a GPU) no host synchronisation and CUDA-graph
capture; torch.compile is in test_compile.py.  Without a GPU they run in Triton's interpreter
(conftest.py), so the shapes stay small.  The accuracy suite (test_accuracy.py) runs
through them as well (the `implementation` fixture)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from smooth_topk import SmoothTopkSVM, cpu_kernel, triton_kernel
from smooth_topk.functional import smooth_topk_svm
from smooth_topk.pytorch.log_space import smooth_topk_log_space


def _loss_and_grad(scores, labels, k, tau, alpha=1.0):
    scores = scores.clone().requires_grad_()
    loss = smooth_topk_svm(scores, labels, k, tau, alpha, reduction="none")
    loss.sum().backward()
    return loss.detach(), scores.grad


def _pytorch_loss_and_grad(scores, labels, k, tau, alpha=1.0):
    """The reference: the PyTorch implementation, whatever SMOOTH_TOPK_IMPL says."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SMOOTH_TOPK_IMPL", "pytorch")
        return _loss_and_grad(scores, labels, k, tau, alpha)


@pytest.mark.usefixtures("triton_kernels")
def test_each_row_takes_the_route_it_needs_and_gets_the_exact_result():
    scores = torch.randn(8, 200, generator=torch.Generator().manual_seed(0))
    labels = torch.full((8,), 5)
    scores[1, 0] = 30.0  # one class far ahead: the power sums cancel, sequential products do not
    scores[2, 7] = float("nan")
    scores[3, 9] = float("inf")
    scores[5, 5] = 1e4  # the label far ahead of every other class
    scores[7] *= 1e4  # sigma_k below 1e-250: only log space holds it
    labels[6] = -1  # what the functions pass for an ignored sample
    assert triton_kernel.routes(scores, labels, 5, 0.1) == [
        "power sums", "products", "non-finite", "non-finite",
        "power sums", "power sums", "ignored", "log products",
    ]  # fmt: skip
    margins = cpu_kernel.margins(1.0)
    loss, grad = triton_kernel.loss_and_grad(scores, labels, margins, 5, 0.1, 1e-8)
    assert torch.isnan(loss[[2, 3]]).all() and torch.isnan(grad[[2, 3]]).all()
    assert loss[6] == 0 and (grad[6] == 0).all()
    kept = torch.tensor([0, 1, 4, 5, 7])
    expected, expected_grad = _pytorch_loss_and_grad(scores[kept].double(), labels[kept], 5, 0.1)
    torch.testing.assert_close(loss[kept].double(), expected, rtol=1e-6, atol=0)
    largest = expected_grad.abs().amax(1, keepdim=True)
    assert ((grad[kept].double() - expected_grad).abs() <= 1e-6 * largest).all()


@pytest.mark.usefixtures("triton_kernels")
@pytest.mark.parametrize("k", [11, 50, 100])
def test_k_beyond_ten_matches_log_space(k):
    generator = torch.Generator().manual_seed(k)
    scores = torch.randn(2, k + 20, generator=generator, dtype=torch.float64) * 3
    labels = torch.randint(0, k + 20, (2,), generator=generator)
    assert set(triton_kernel.routes(scores, labels, k, 0.5)) == {"products"}
    reference = scores.clone().requires_grad_()
    expected = smooth_topk_log_space(reference, labels, k, 0.5, 1.0)
    expected.sum().backward()
    for dtype, tolerance in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
        loss, grad = _loss_and_grad(scores.to(dtype), labels, k, 0.5)
        torch.testing.assert_close(loss.double(), expected.detach(), rtol=tolerance, atol=0)
        largest = reference.grad.abs().max()
        assert (grad.double() - reference.grad).abs().max() <= tolerance * largest


@pytest.mark.usefixtures("triton_kernels")
@pytest.mark.parametrize("k", [1, 5, 12])
def test_a_tiny_loss_keeps_its_relative_precision(k):
    """The label far ahead: a loss near 1e-30, which log(1 + t) in place of log1p would round
    to 0 (float32 represents it)."""
    scores = torch.zeros(1, 30)
    scores[0, 4] = 70.0 * k  # z = log(sigma_k / sigma_{k-1}) - 70: a loss near exp(-70)
    labels = torch.tensor([4])
    loss, grad = _loss_and_grad(scores, labels, k, 1.0, alpha=0.0)
    expected, expected_grad = _pytorch_loss_and_grad(scores.double(), labels, k, 1.0, alpha=0.0)
    assert 0 < expected.item() < 1e-25
    torch.testing.assert_close(loss.double(), expected, rtol=1e-6, atol=0)
    torch.testing.assert_close(grad.double(), expected_grad, rtol=1e-6, atol=0)


@pytest.mark.usefixtures("triton_kernels")
def test_ten_thousand_classes():
    generator = torch.Generator().manual_seed(1)
    scores = torch.randn(2, 10_000, generator=generator)
    labels = torch.tensor([3, 9_999])
    assert triton_kernel.routes(scores, labels, 5, 0.1) == ["power sums", "power sums"]
    loss, grad = _loss_and_grad(scores, labels, 5, 0.1)
    expected, expected_grad = _pytorch_loss_and_grad(scores.double(), labels, 5, 0.1)
    torch.testing.assert_close(loss.double(), expected, rtol=1e-6, atol=0)
    assert (grad.double() - expected_grad).abs().max() <= 1e-6 * expected_grad.abs().max()


@pytest.mark.usefixtures("compiled_kernel")
@pytest.mark.parametrize("k,tau,spread", [(1, 1.0, 1), (5, 0.1, 1), (5, 0.01, 5), (3, 1e-3, 50)])
def test_agrees_with_the_cpu_kernel_in_float32(k, tau, spread, monkeypatch):
    """Spread 5 with tau 0.01 sends most rows to sequential products, spread 50 with tau 1e-3
    most to log space."""
    generator = torch.Generator().manual_seed(k)
    scores = torch.randn(6, 60, generator=generator) * spread
    labels = torch.randint(0, 60, (6,), generator=generator)
    on_cpu = _loss_and_grad(scores, labels, k, tau)
    monkeypatch.setenv("SMOOTH_TOPK_IMPL", "triton")
    if not triton_kernel.usable(scores, k):
        pytest.skip("the Triton kernels do not serve CPU tensors here")
    on_triton = _loss_and_grad(scores, labels, k, tau)
    torch.testing.assert_close(on_triton[0], on_cpu[0], rtol=1e-6, atol=0)
    assert (on_triton[1] - on_cpu[1]).abs().max() <= 1e-6 * on_cpu[1].abs().max()


@pytest.mark.usefixtures("triton_kernels")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_read_directly_and_computed_in_float32(dtype):
    generator = torch.Generator().manual_seed(2)
    scores = torch.randn(4, 30, generator=generator).to(dtype)
    labels = torch.randint(0, 30, (4,), generator=generator)
    loss, grad = _loss_and_grad(scores, labels, 5, 0.5)
    wide_loss, wide_grad = _loss_and_grad(scores.float(), labels, 5, 0.5)
    assert loss.dtype == torch.float32 and grad.dtype == dtype
    torch.testing.assert_close(loss, wide_loss, rtol=0, atol=0)  # the same float64 computation
    # Rounded once from float64 (by way of float32): within one unit in the last place.
    torch.testing.assert_close(grad, wide_grad.to(dtype), rtol=2 * torch.finfo(dtype).eps, atol=0)


def test_asking_for_triton_where_it_cannot_serve_is_a_clear_error(monkeypatch):
    scores, labels = torch.randn(3, 12), torch.randint(0, 12, (3,))
    monkeypatch.setenv("SMOOTH_TOPK_IMPL", "triton")
    monkeypatch.setattr(triton_kernel, "kernels", lambda: None)
    monkeypatch.setattr(triton_kernel, "_import_error", ["No module named 'triton'"])
    with pytest.raises(ValueError, match="cannot serve .*Triton cannot be imported .*'triton'"):
        smooth_topk_svm(scores, labels, 3)
    monkeypatch.setenv("SMOOTH_TOPK_IMPL", "auto")  # auto never fails for want of Triton
    assert torch.isfinite(smooth_topk_svm(scores, labels, 3))


def _training_step(model, criterion, optimizer, inputs, labels):
    optimizer.zero_grad(set_to_none=False)
    loss = criterion(model(inputs), labels)
    loss.backward()
    optimizer.step()
    return loss


@pytest.mark.cuda
def test_cuda_training_step_does_not_synchronise():
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 100))
    model.cuda()
    criterion = SmoothTopkSVM(k=5, tau=0.1).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    inputs = torch.randn(64, 32, device="cuda")
    labels = torch.randint(0, 100, (64,), device="cuda")
    labels[0] = -100
    _training_step(model, criterion, optimizer, inputs, labels)  # compiles the kernels
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss = _training_step(model, criterion, optimizer, inputs, labels)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(loss).item()


@pytest.mark.cuda
@pytest.mark.parametrize("k", [5, 20])
def test_cuda_graph_capture_replays_the_loss_and_gradient(k):
    scores = torch.randn(32, 200, device="cuda", requires_grad=True)
    labels = torch.randint(0, 200, (32,), device="cuda")
    criterion = SmoothTopkSVM(k=k, tau=0.1).cuda()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up outside the graph, as CUDA graphs require
        for _ in range(2):
            scores.grad = None
            criterion(scores, labels).backward()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    scores.grad = None
    with torch.cuda.graph(graph):
        loss = criterion(scores, labels)
        loss.backward()
    with torch.no_grad():
        scores.copy_(torch.randn_like(scores) * 3)
    graph.replay()
    fresh = scores.detach().clone().requires_grad_()
    expected = criterion(fresh, labels)
    expected.backward()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(scores.grad, fresh.grad)


@pytest.mark.cuda
def test_cuda_reduce_overhead_compile_matches_eager():
    model = torch.nn.Linear(32, 100).cuda()
    criterion = SmoothTopkSVM(k=5, tau=0.1).cuda()
    inputs = torch.randn(16, 32, device="cuda")
    labels = torch.randint(0, 100, (16,), device="cuda")

    def step():
        return criterion(model(inputs), labels)

    compiled = torch.compile(step, fullgraph=True, mode="reduce-overhead")
    for _ in range(3):
        value = compiled()
    torch.testing.assert_close(value, step())


@pytest.mark.cuda
@pytest.mark.parametrize("k", [1, 5, 20, 100])
def test_cuda_matches_the_cpu_for_every_k(k):
    generator = torch.Generator().manual_seed(k)
    scores = torch.randn(16, 300, generator=generator, dtype=torch.float64) * 4
    labels = torch.randint(0, 300, (16,), generator=generator)
    expected, expected_grad = _loss_and_grad(scores, labels, k, 0.1)
    for dtype in (torch.float32, torch.bfloat16):
        loss, grad = _loss_and_grad(scores.to(dtype).cuda(), labels.cuda(), k, 0.1)
        if dtype == torch.float32:
            torch.testing.assert_close(loss.double().cpu(), expected, rtol=1e-5, atol=1e-6)
            largest = expected_grad.abs().max()
            assert (grad.double().cpu() - expected_grad).abs().max() <= 1e-5 * largest
        else:
            assert torch.isfinite(loss).all() and grad.dtype == torch.bfloat16


@pytest.mark.slow
def test_kernels_compile_for_nvidia_gpus_without_spilling():
    """The interpreter runs the kernels' Python; this compiles them to GPU code (sm_90, through
    Triton's bundled ptxas, no GPU needed), which the interpreter never does."""
    pytest.importorskip("triton")  # the interpreter (and its numpy) is not needed here
    script = Path(__file__).with_name("compile_triton_kernels.py")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, str(script), "90"], capture_output=True, text=True, env=environment
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.count("LOCAL:0") == 32, result.stdout
