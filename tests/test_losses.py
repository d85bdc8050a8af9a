"""The comparison losses, each against a straightforward computation of its formula."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from topk_repro.losses import LOSSES, LossData, build_criterion
from topk_repro.losses.gce import generalised_cross_entropy
from topk_repro.losses.lml import lml_loss, lml_threshold
from topk_repro.losses.noised_topk import NoisedTopk, imbalanced_margins, perturbed_rank
from topk_repro.losses.truncated_entropy import truncated_topk_entropy

CLASSES = 10


def inputs(seed=0, batch=6, dtype=torch.float64, scale=3.0):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, CLASSES, generator=generator, dtype=dtype) * scale
    return scores, torch.randint(0, CLASSES, (batch,), generator=generator)


def data(counts=None):
    counts = np.full(CLASSES, 10) if counts is None else np.asarray(counts)
    return LossData(CLASSES, counts)


def config(**values):
    return OmegaConf.create(values)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_truncated_topk_entropy_matches_its_definition(k):
    scores, labels = inputs()
    expected = []
    for row, y in zip(scores, labels.tolist(), strict=True):
        others = sorted((row[j].item() for j in range(CLASSES) if j != y), reverse=True)
        kept = others[k - 1 :]  # the C - k smallest of the other classes
        expected.append(math.log(1 + sum(math.exp(v - row[y].item()) for v in kept)))
    ours = truncated_topk_entropy(scores, labels, k)
    assert ours.item() == pytest.approx(sum(expected) / len(expected), rel=1e-6)
    if k == 1:
        torch.testing.assert_close(
            ours.double(), F.cross_entropy(scores, labels), rtol=1e-6, atol=0
        )


def test_gce_matches_its_definition_and_tends_to_cross_entropy():
    scores, labels = inputs()
    p_y = torch.softmax(scores, 1)[torch.arange(len(labels)), labels]
    for q in (0.7, 1.0):
        expected = ((1 - p_y**q) / q).mean()
        ours = generalised_cross_entropy(scores, labels, q)
        assert ours.item() == pytest.approx(expected.item(), rel=1e-6)
    small = generalised_cross_entropy(scores, labels, 1e-6)
    assert small.item() == pytest.approx(F.cross_entropy(scores, labels).item(), rel=1e-4)


@pytest.mark.parametrize("k", [1, 3, 9])
def test_lml_constraint_holds_and_gradient_is_exact(k):
    scores, labels = inputs(1, scale=5.0)
    nu = lml_threshold(scores, k)
    total = torch.sigmoid(scores + nu[:, None]).sum(1)
    torch.testing.assert_close(total, torch.full_like(total, float(k)), atol=1e-5, rtol=0)
    leaf = scores.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda s: lml_loss(s, labels, k), (leaf,))
    p_y = torch.sigmoid(scores + nu[:, None])[torch.arange(len(labels)), labels]
    assert lml_loss(scores, labels, k).item() == pytest.approx(-p_y.log().mean().item(), rel=1e-9)


def test_lml_on_constant_and_wide_rows():
    scores = torch.tensor([[0.0] * CLASSES, [1e3] + [-1e3] * (CLASSES - 1)], dtype=torch.float64)
    nu = lml_threshold(scores, 2)
    total = torch.sigmoid(scores + nu[:, None]).sum(1)
    torch.testing.assert_close(total, torch.full_like(total, 2.0), atol=1e-5, rtol=0)


def test_noised_topk_matches_the_same_draws_computed_by_hand():
    scores, labels = inputs(2, dtype=torch.float32)
    k, eps, draws = 3, 0.5, 4
    torch.manual_seed(7)
    noise = torch.randn(draws, *scores.shape)
    expected, direction = [], torch.zeros_like(scores)
    for i in range(len(labels)):
        values = []
        for d in range(draws):
            perturbed = scores[i] + eps * noise[d, i]
            order = sorted(range(CLASSES), key=lambda j: -perturbed[j].item())
            values.append(perturbed[order[k]].item())  # the (k+1)-th largest
            direction[i, order[k]] += 1 / draws
        expected.append(max(0.0, 1.0 + sum(values) / draws - scores[i, labels[i]].item()))
    criterion = NoisedTopk(k, torch.full((CLASSES,), 1.0), eps, draws)
    leaf = scores.clone().requires_grad_()
    torch.manual_seed(7)
    loss = criterion(leaf, labels)
    assert loss.item() == pytest.approx(sum(expected) / len(expected), rel=1e-5)
    loss.backward()
    active = torch.tensor([e > 0 for e in expected])
    hand = direction.clone()
    hand[torch.arange(len(labels)), labels] -= 1
    hand = hand * active[:, None] / len(labels)
    torch.testing.assert_close(leaf.grad, hand, rtol=1e-5, atol=1e-6)


def test_noised_topk_tends_to_the_hard_hinge_and_imbalanced_margins():
    scores, labels = inputs(3, dtype=torch.float32)
    threshold = perturbed_rank(scores, 4, 1e-6, 3)
    torch.testing.assert_close(threshold, scores.topk(4, 1).values[:, -1], rtol=0, atol=1e-4)
    margins = imbalanced_margins(2.0, [16, 1, 81, 256] + [1] * (CLASSES - 4))
    assert margins[1].item() == pytest.approx(2.0) and margins[0].item() == pytest.approx(1.0)
    assert margins[2].item() == pytest.approx(2.0 / 3) and margins[3].item() == pytest.approx(0.5)


@pytest.mark.parametrize(
    "values,message",
    [
        ({"name": "gce", "q": 0.0}, r"loss.q must be in \(0, 1\]"),
        ({"name": "gce", "q": 1.5}, r"loss.q must be in \(0, 1\]"),
        ({"name": "lml", "k": 10}, r"loss.k must be an int in \[1, 9\]"),
        ({"name": "truncated_topk_entropy", "k": 0}, "loss.k must be"),
        ({"name": "ce", "label_smoothing": 1.5}, "loss.label_smoothing must be in"),
        (
            {"name": "noised_topk", "k": 5, "alpha": 1.0, "eps": 0.0, "n_samples": 3},
            "loss.eps must be a number > 0",
        ),
        (
            {"name": "noised_topk", "k": 5, "alpha": -1.0, "eps": 1.0, "n_samples": 3},
            "loss.alpha must be",
        ),
        (
            {"name": "noised_topk", "k": 5, "alpha": 1.0, "eps": 1.0, "n_samples": 0},
            "loss.n_samples must be",
        ),
    ],
)
def test_bad_hyperparameters_name_the_key(values, message):
    with pytest.raises(ValueError, match=message):
        build_criterion(config(**values), data())


def test_imbalanced_margins_need_counts_from_the_engine():
    cfg = config(name="noised_topk", k=2, alpha=1.0, eps=1.0, n_samples=2, imbalanced=True)
    with pytest.raises(ValueError, match="positive training-label count"):
        build_criterion(cfg, data([0] + [5] * (CLASSES - 1)))


@pytest.mark.parametrize(
    "values",
    [
        {"name": "ce", "label_smoothing": 0.1},
        {"name": "truncated_topk_entropy", "k": 3},
        {"name": "lml", "k": 3},
        {
            "name": "noised_topk",
            "k": 3,
            "alpha": 1.0,
            "eps": 1.0,
            "n_samples": 2,
            "imbalanced": False,
        },
        {"name": "gce", "q": 0.7},
    ],
)
def test_half_precision_input_is_computed_in_float32(values):
    criterion, _ = build_criterion(config(**values), data())
    scores, labels = inputs(4, dtype=torch.float32)
    torch.manual_seed(0)
    reference = criterion(scores, labels)
    for dtype in (torch.float16, torch.bfloat16):
        half = scores.to(dtype).requires_grad_()
        torch.manual_seed(0)
        loss = criterion(half, labels)
        assert loss.dtype == torch.float32
        loss.backward()
        assert half.grad.dtype == dtype and torch.isfinite(half.grad).all()
        torch.testing.assert_close(loss, reference, rtol=2e-2, atol=2e-2)


def test_every_registered_loss_has_a_config():
    import yaml

    from helpers import CONFIGS

    folder = CONFIGS / "loss"
    names = {yaml.safe_load(p.read_text()).get("name") for p in folder.glob("*.yaml")}
    assert set(LOSSES) <= names | {None}
