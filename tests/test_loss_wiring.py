"""Each loss the framework builds, checked by value: built from its config group with settings
other than its defaults (so that a dropped or swapped setting shows), its output on fixed scores
equals the function it wraps called with those settings directly."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import CONFIGS, compose_config
from smooth_topk import functional
from topk_repro.losses import LossData, build_criterion
from topk_repro.losses.gce import generalised_cross_entropy
from topk_repro.losses.lml import lml_loss
from topk_repro.losses.noised_topk import NoisedTopk, imbalanced_margins
from topk_repro.losses.truncated_entropy import truncated_topk_entropy

C = 10
COUNTS = np.arange(1, C + 1) * 10  # the (noisy) training labels' class counts
SCORES = 3 * torch.randn(32, C, generator=torch.Generator().manual_seed(0))
LABELS = torch.randint(0, C, (32,), generator=torch.Generator().manual_seed(1))
NOISED = {"k": 3, "alpha": 0.3, "eps": 0.5, "n_samples": 7}

# config name -> (settings unlike its defaults, the loss those settings should give)
CASES = {
    "smooth_topk_svm": (
        {"k": 3, "tau": 0.5, "alpha": 0.3},
        lambda s, y: functional.smooth_topk_svm(s, y, k=3, tau=0.5, alpha=0.3),
    ),
    "hard_topk_svm": (
        {"k": 3, "alpha": 0.3},
        lambda s, y: functional.hard_topk_svm(s, y, k=3, alpha=0.3),
    ),
    "ce": ({"label_smoothing": 0.3}, lambda s, y: F.cross_entropy(s, y, label_smoothing=0.3)),
    "ce_label_smoothing": (
        {"label_smoothing": 0.3},
        lambda s, y: F.cross_entropy(s, y, label_smoothing=0.3),
    ),
    "gce": ({"q": 0.3}, lambda s, y: generalised_cross_entropy(s, y, 0.3)),
    "truncated_topk_entropy": ({"k": 3}, lambda s, y: truncated_topk_entropy(s, y, 3)),
    "lml": ({"k": 3}, lambda s, y: lml_loss(s, y, 3)),
    "noised_topk": (
        NOISED,
        lambda s, y: NoisedTopk(3, torch.full((C,), 0.3), 0.5, 7)(s, y),
    ),
    "noised_topk_imbalanced": (
        NOISED,
        lambda s, y: NoisedTopk(3, imbalanced_margins(0.3, COUNTS), 0.5, 7)(s, y),
    ),
}


def test_every_loss_config_is_checked_by_value():
    configs = {path.stem for path in (Path(CONFIGS) / "loss").glob("*.yaml")}
    assert configs == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_built_loss_equals_its_function_at_non_default_settings(name):
    settings, expected = CASES[name]
    cfg = compose_config([f"loss={name}", *(f"loss.{k}={v}" for k, v in settings.items())])
    defaults = compose_config([f"loss={name}"]).loss
    assert all(defaults[key] != value for key, value in settings.items()), "not a non-default"
    criterion, _ = build_criterion(cfg.loss, LossData(C, COUNTS))
    torch.manual_seed(2)  # the noised losses draw their perturbations from torch's generator
    built = criterion(SCORES, LABELS)
    torch.manual_seed(2)
    assert torch.allclose(built, expected(SCORES, LABELS), rtol=1e-6, atol=1e-6)
