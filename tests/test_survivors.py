"""Tests that kill mutants `make mutation` found surviving (docs/testing.md lists the rest, and
why they cannot change a result): each pins a value the suite did not check before."""

import numpy as np
import pytest
import torch

from helpers import compose_config, tiny_overrides
from topk_repro.config.identity import identity_digest, run_identity
from topk_repro.data.label_noise import noise_groups
from topk_repro.engine.diagnostics import TopkDiagnostics
from topk_repro.engine.metrics import Meter
from topk_repro.losses import LossData, build_criterion
from topk_repro.losses.topk_svm import smooth_label


def test_block_groups_are_whole_blocks_of_five_labels():
    name, groups = noise_groups("block", np.zeros(100, dtype=np.int64))
    assert name == "block" and groups.dtype.kind == "i"
    assert groups.tolist() == [c // 5 for c in range(100)]


def test_a_single_process_run_has_no_process_count_and_several_have_theirs(tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path))
    assert "processes" not in run_identity(cfg, 1)
    assert run_identity(cfg, 2)["processes"] == 2.0


def test_numbers_equal_to_twelve_digits_are_one_setting_and_not_beyond(tmp_path):
    def digest(lr: str) -> str:
        return identity_digest(
            run_identity(compose_config(tiny_overrides(tmp_path, f"optim.lr={lr}")))
        )

    assert digest("0.1") == digest("0.1000000000001")  # differs in the 13th digit
    assert digest("0.1") != digest("0.100000000001")  # differs in the 12th


def test_one_evaluated_image_gives_whole_percentages():
    meter = Meter("cpu")
    meter.update(torch.tensor([[0.0, 1.0, 0.5]]), torch.tensor([1]), loss_sum=0.25)
    result = meter.result("test")
    assert (result["test/top1"], result["test/loss"]) == (100.0, 0.25)


def test_per_class_accuracy_with_one_image_per_class():
    diagnostics = TopkDiagnostics(3, topk_max=5, groups=None, device="cpu")
    scores = torch.tensor([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0], [2.0, 0.0, 1.0]])
    diagnostics.update(scores, torch.tensor([0, 1, 2]))
    result = diagnostics.result("test")
    assert result["test/per_class_top1"] == [100.0, 100.0, 0.0]


@pytest.mark.parametrize("k,accepted", [(1, True), (9, True), (10, False), (0, False)])
def test_the_loss_k_may_be_one_up_to_one_below_the_class_count(k, accepted):
    cfg = compose_config(["loss=smooth_topk_svm", f"loss.k={k}"]).loss
    data = LossData(10, np.ones(10, dtype=np.int64))
    if accepted:
        assert build_criterion(cfg, data)[0].k == k
    else:
        with pytest.raises(ValueError, match=r"loss.k must be an int in \[1, 9\]"):
            build_criterion(cfg, data)


def test_the_smooth_svms_table_label_names_k_and_tau():
    assert smooth_label({"k": 5, "tau": 1.0}) == "SVM k=5 tau=1"
    assert smooth_label({"k": 5}) == "SVM k=5"
