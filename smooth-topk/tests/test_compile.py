"""torch.compile: each kernel (the C++ one, the Triton one) is one graph operator, so a model and
the loss compile into one graph (fullgraph=True) with the eager values and gradients."""

import pytest
import torch

from smooth_topk import SmoothTopkSVM, cpu_kernel
from smooth_topk.functional import smooth_topk_svm


@pytest.fixture(params=["compiled_kernel", "triton_kernels"])
def kernel(request):
    """Each kernel's operator: the C++ one, and the Triton one (interpreted without a GPU)."""
    request.getfixturevalue(request.param)
    return request.param


def case(seed=0):
    generator = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(8, 30)
    inputs = torch.randn(16, 8, generator=generator)
    labels = torch.randint(0, 30, (16,), generator=generator)
    labels[2] = -100  # an ignored sample
    return layer, inputs, labels


@pytest.mark.usefixtures("kernel")
def test_no_graph_break_with_the_kernel():
    layer, inputs, labels = case()

    def step():
        return SmoothTopkSVM(k=5, tau=0.1)(layer(inputs), labels)

    torch._dynamo.reset()
    explanation = torch._dynamo.explain(step)()
    assert explanation.graph_break_count == 0, explanation.break_reasons


@pytest.mark.parametrize("k", [1, 5, 12])
def test_fullgraph_gives_the_eager_values_and_gradients(k, kernel, recwarn):
    if kernel == "compiled_kernel" and k > 10:
        pytest.skip("the C++ kernel serves k <= 10 (beyond it, PyTorch breaks the graph)")
    layer, inputs, labels = case(1)
    margins = torch.rand(16)
    weight = torch.rand(30) + 0.5

    def step():
        scores = layer(inputs)
        return smooth_topk_svm(scores, labels, k, 0.5, margins, weight=weight)

    torch._dynamo.reset()
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")()
    compiled.backward()
    compiled_grad, layer.weight.grad = layer.weight.grad.clone(), None
    eager = step()
    eager.backward()
    torch.testing.assert_close(compiled, eager)
    torch.testing.assert_close(compiled_grad, layer.weight.grad)
    assert not [w for w in recwarn.list if "Dynamo does not know" in str(w.message)]


def test_the_pytorch_implementation_still_compiles_with_a_graph_break(monkeypatch):
    monkeypatch.setenv("SMOOTH_TOPK_IMPL", "pytorch")
    layer, inputs, labels = case(2)

    def step():
        return SmoothTopkSVM(k=5, tau=0.1)(layer(inputs), labels)

    torch._dynamo.reset()
    compiled = torch.compile(step, backend="aot_eager")()
    torch.testing.assert_close(compiled, step())


@pytest.mark.usefixtures("compiled_kernel")
def test_the_operator_gives_nan_for_rows_with_non_finite_scores():
    scores = torch.randn(3, 10)
    scores[1, 4] = float("inf")
    margins = cpu_kernel.margins(1.0)
    loss, grad = cpu_kernel.loss_and_grad(scores, torch.tensor([0, 1, 2]), margins, 3, 1.0, 1e-8)
    assert torch.isnan(loss[1]) and torch.isnan(grad[1]).all()
    assert torch.isfinite(loss[[0, 2]]).all() and torch.isfinite(grad[[0, 2]]).all()
