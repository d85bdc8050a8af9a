"""`optim.name` chooses the optimizer: each is a registered component with its own schema, an
unknown name is refused naming the key, and the paper's SGD runs keep their identity."""

import pytest
import torch
import yaml

from helpers import compose_config, run_checked, tiny_overrides, train_command
from topk_repro.config.identity import identity_digest, run_identity
from topk_repro.config.settings import check_config
from topk_repro.engine import fit


def _optimizer_state(run_folder) -> dict:
    checkpoint = torch.load(run_folder / "last.pt", map_location="cpu", weights_only=False)
    return checkpoint["optimizer"]


def test_optim_adamw_trains_with_adamw(tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path, "trainer.epochs=1", "optim=adamw"))
    assert fit.run(cfg, tmp_path / "run")["status"] == "finished"
    state = _optimizer_state(tmp_path / "run")
    first = next(iter(state["state"].values()))
    assert {"exp_avg", "exp_avg_sq"} <= set(first) and "momentum_buffer" not in first
    assert state["param_groups"][0]["betas"] == (0.9, 0.999)


def test_the_default_optimizer_is_the_papers_sgd(tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path, "trainer.epochs=1"))
    assert fit.run(cfg, tmp_path / "run")["status"] == "finished"
    state = _optimizer_state(tmp_path / "run")
    assert "momentum_buffer" in next(iter(state["state"].values()))
    assert state["param_groups"][0]["nesterov"] is True


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.name=rmsprop_typo"], r"optim.name must be one of sgd, adamw, got 'rmsprop_typo'"),
        (["optim=adamw", "optim.betas=[0.9,1.5]"], r"optim.betas must be two numbers in \[0, 1\)"),
        (["optim=adamw", "+optim.momentum=0.9"], r"optim.momentum: Key 'momentum' not in"),
        (["optim.momentum=-1"], r"optim.momentum must be a finite number >= 0"),
        (["optim.lr=0"], r"optim.lr must be a finite number > 0"),
        (["optim.lr=inf"], r"optim.lr must be a finite number > 0, got inf"),
        (["optim.weight_decay=nan"], r"optim.weight_decay must be a finite number >= 0, got nan"),
        (["optim.momentum=nan"], r"optim.momentum must be a finite number >= 0, got nan"),
        (["optim.gamma=inf"], r"optim.gamma must be a finite number > 0, got inf"),
        (["optim=adamw", "optim.eps=inf"], r"optim.eps must be a finite number > 0, got inf"),
    ],
)
def test_optimizer_settings_that_cannot_be_right_are_refused_naming_the_key(
    tmp_path, overrides, message
):
    with pytest.raises(ValueError, match=message):
        check_config(compose_config(tiny_overrides(tmp_path, *overrides)))


@pytest.mark.parametrize(
    ("overrides", "digest"),
    [
        # Digests of runs recorded before optimizers were components (commit 5f202a1).
        (["experiment=cifar100_noise", "dataset.noise.p=0.2"], "3a597be598"),
        ([], "5fe68b09c2"),
    ],
)
def test_sgd_runs_keep_the_identity_they_were_recorded_with(overrides, digest):
    assert identity_digest(run_identity(compose_config(overrides))) == digest


def test_optimizers_of_different_names_are_different_runs(tmp_path):
    sgd = compose_config(tiny_overrides(tmp_path))
    adamw = compose_config(tiny_overrides(tmp_path, "optim=adamw", "optim.lr=0.05"))
    assert run_identity(adamw)["optim.name"] == "adamw"
    assert identity_digest(run_identity(sgd)) != identity_digest(run_identity(adamw))


PRESETS_WITH_SGD_VALUES = [
    "experiment=study_cpu",
    "experiment=data_size_cpu",
    "experiment=demo",
    "experiment=cifar100_noise",
    "experiment=imagenet_subsets",
    "experiment=compare_losses_demo",
    "debug=overfit",
]


@pytest.mark.parametrize("preset", PRESETS_WITH_SGD_VALUES)
def test_optim_adamw_in_a_preset_trains_with_adamws_values_and_the_presets_schedule(preset):
    sgd = check_config(compose_config([preset]))
    adamw = check_config(compose_config([preset, "optim=adamw"]))
    defaults = compose_config(["optim=adamw"]).optim
    assert adamw.optim.name == "adamw"
    assert (adamw.optim.lr, adamw.optim.weight_decay) == (defaults.lr, defaults.weight_decay)
    assert list(adamw.optim.milestones) == list(sgd.optim.milestones)  # the preset's schedule
    assert sgd.optim.lr != defaults.lr  # the preset's SGD values are not what AdamW gets


def test_a_presets_own_adamw_values_are_used_under_adamw():
    cfg = check_config(
        compose_config(["experiment=study_cpu", "optim=adamw", "+per_optim.adamw.lr=0.003"])
    )
    assert cfg.optim.lr == 0.003


def test_cfg_job_shows_the_values_adamw_will_use_inside_a_preset():
    shown = run_checked(
        train_command("experiment=study_cpu", "optim=adamw", "--cfg", "job", "--resolve")
    ).stdout
    optim = yaml.safe_load(shown)["optim"]
    assert optim["name"] == "adamw" and optim["lr"] == 0.001 and optim["weight_decay"] == 0.05
    assert optim["milestones"] == [45, 67]
