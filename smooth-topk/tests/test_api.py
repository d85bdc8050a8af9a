"""The loss as a torch loss: dtypes, reductions, modules, bad input, devices, autocast."""

import copy
import pickle

import pytest
import torch

from smooth_topk import HardTopkSVM, SmoothTopkSVM
from smooth_topk.functional import smooth_topk_svm


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


@pytest.mark.cuda
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


@pytest.mark.cuda
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


@pytest.mark.cuda
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


def test_top1_path_keeps_to_the_input_device():
    from smooth_topk.functional import _smooth_top1

    scores = torch.empty(4, 30, device="meta")
    labels = torch.zeros(4, dtype=torch.int64, device="meta")
    assert _smooth_top1(scores, labels, 0.5, 1.0).device.type == "meta"


def test_the_documented_defaults_are_k5_tau1_alpha1():
    """The functions' and modules' defaults are the paper's L_{5,1} (k = 5, tau = 1, alpha = 1)."""
    from smooth_topk.functional import hard_topk_svm

    scores = 3 * torch.randn(8, 10, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(8)
    explicit = smooth_topk_svm(scores, labels, k=5, tau=1.0, alpha=1.0)
    assert torch.equal(smooth_topk_svm(scores, labels), explicit)
    assert torch.equal(SmoothTopkSVM()(scores, labels), explicit)
    hard = hard_topk_svm(scores, labels, k=5, alpha=1.0)
    assert torch.equal(hard_topk_svm(scores, labels), hard)
    assert torch.equal(HardTopkSVM()(scores, labels), hard)


def test_the_module_says_which_implementation_computes_it(monkeypatch):
    monkeypatch.setenv("SMOOTH_TOPK_IMPL", "pytorch")
    assert SmoothTopkSVM(k=5).implementation("cpu") == "pytorch"
    monkeypatch.setenv("SMOOTH_TOPK_IMPL", "auto")
    criterion = SmoothTopkSVM(k=50)  # beyond the CPU kernel's k: PyTorch's operations
    assert criterion.implementation(torch.device("cpu")) == "pytorch"
