"""The presets: the paper's facts they encode, and every preset file composing and passing the
config check, so that a broken preset fails in seconds."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers import CONFIGS, compose_config, run_script_here
from topk_repro.config.settings import check_config


def test_paper_presets_encode_the_paper_facts():
    for loss in ("ce", "smooth_topk_svm"):
        cfg = compose_config(["experiment=cifar100_noise", f"loss={loss}"])
        assert cfg.experiment_name == "cifar100_noise"
        assert cfg.dataset.name == "cifar100" and cfg.dataset.split_seed == 1234
        assert cfg.dataset.val_count == 5000 and cfg.dataset.noise.mode == "block"
        assert cfg.model.name == "densenet" and cfg.model.depth == 40
        assert cfg.model.growth_rate == 40 and cfg.model.compression == 0.5
        assert cfg.trainer.epochs == 300 and cfg.trainer.batch_size == 64
        assert cfg.optim.lr == 0.1 and cfg.optim.weight_decay == 1e-4
        assert cfg.optim.nesterov and cfg.optim.momentum == 0.9
        assert list(cfg.optim.milestones) == [151, 226] and cfg.optim.gamma == 0.1
    svm = compose_config(["experiment=cifar100_noise"]).loss
    assert (svm.name, svm.k, svm.tau, svm.alpha) == ("smooth_topk_svm", 5, 1.0, 1.0)

    ce = compose_config(["experiment=imagenet_subsets", "loss=ce"])
    assert ce.model.name == "resnet18" and ce.trainer.epochs == 120
    assert ce.trainer.batch_size == 256 and list(ce.optim.milestones) == [31, 61, 91]
    assert ce.optim.lr == 0.1 and ce.optim.weight_decay == 1e-4
    assert ce.dataset.val_per_class == 50 and ce.dataset.test_crops == 10
    svm = compose_config(["experiment=imagenet_subsets"])
    assert svm.optim.lr == 1.0 and svm.optim.weight_decay == 2.5e-5
    assert (svm.loss.k, svm.loss.tau, svm.loss.alpha) == (5, 0.1, 1.0)


@pytest.mark.parametrize("experiment", ["demo", "cifar100_noise", "imagenet_subsets"])
@pytest.mark.parametrize("loss", ["ce", "smooth_topk_svm", "hard_topk_svm"])
def test_every_preset_composes(experiment, loss):
    cfg = compose_config([f"experiment={experiment}", f"loss={loss}", "logger=wandb"])
    assert cfg.run_name.startswith(cfg.loss.tag)


def _preset_files(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIGS / group).glob("*.yaml"))


def _swept_losses(cfg) -> list[str]:
    """The losses a preset's sweep runs (hydra.sweeper.params.loss), else its own."""
    params = OmegaConf.select(cfg, "hydra.sweeper.params", default=None) or {}
    swept = params.get("loss")
    return [name.strip() for name in str(swept).split(",")] if swept else [cfg.loss.name]


PRESETS = [
    (group, name)
    for group in ("experiment", "debug", "hparams_search", "launcher")
    for name in _preset_files(group)
]


@pytest.mark.parametrize(("group", "name"), PRESETS, ids=[f"{g}={n}" for g, n in PRESETS])
def test_every_preset_file_composes_and_passes_the_config_check(group, name):
    """Each preset, with each loss its sweep names, as `train.py` would check it."""
    cfg = compose_config([f"{group}={name}"], return_hydra_config=True)
    for loss in _swept_losses(cfg):
        with_loss = compose_config([f"{group}={name}", f"loss={loss}"])
        checked = check_config(with_loss)
        assert checked.loss.name == compose_config([f"loss={loss}"]).loss.name


def test_every_preset_group_is_covered():
    """A new preset folder must be added to PRESETS' groups (or be a component group)."""
    components = {"dataset", "model", "loss", "optim", "trainer", "logger"}
    groups = {path.name for path in Path(CONFIGS).iterdir() if path.is_dir()}
    assert groups - components == {"experiment", "debug", "hparams_search", "launcher"}


@pytest.mark.parametrize(
    "launcher,target",
    [
        ("basic", "BasicLauncher"),
        ("joblib", "JoblibLauncher"),
        ("submitit_local", "LocalLauncher"),
        ("submitit_slurm", "SlurmLauncher"),
    ],
)
def test_launcher_presets_select_the_hydra_plugin(launcher, target):
    cfg = compose_config([f"launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith(target)


@pytest.mark.parametrize("launcher", ["submitit_slurm", "slurm_ddp", "slurm_cpu"])
def test_every_slurm_preset_is_sized_from_resources(launcher):
    sizes = ["resources.mem_gb=64", "resources.time_min=2880", "resources.cpus_per_gpu=3"]
    sizes.append("resources.cpus_per_process=3")
    job = compose_config([f"launcher={launcher}", *sizes], return_hydra_config=True).hydra.launcher
    assert (job.mem_gb, job.timeout_min, job.cpus_per_task) == (64, 2880, 3)


# Run identities pinned: a refactoring of code or presets must leave every run where it was
# (the folder name's digest) and every study's finished runs findable.  Recomputed by
# `identity_digest(run_identity(compose_config([...])))`; a change here is a change of results.
PINNED = {
    ("experiment=cifar100_noise", "loss=ce"): "493b0f07ae",
    ("experiment=cifar100_noise", "loss=smooth_topk_svm", "dataset.noise.p=1.0"): "7442027a72",
    ("experiment=cifar100_tau_hard", "loss=hard_topk_svm"): "ddde366c7d",
    ("experiment=compare_losses", "loss=lml", "dataset.noise.p=0.8"): "b57e319397",
    ("experiment=compare_losses_demo", "loss=gce"): "d2951f5b13",
    ("experiment=study_cpu", "loss=smooth_topk_svm", "dataset.noise.p=0.8"): "c55ffa083d",
    ("experiment=data_size_cpu", "loss=smooth_topk_svm"): "d8845fdf11",
    ("experiment=demo", "loss=ce"): "51930467e2",
    ("experiment=imagenet_subsets", "loss=smooth_topk_svm"): "1defe05999",
    ("experiment=cpu_scale", "loss=smooth_topk_svm", "optim=adamw"): "00379a80ef",
}


@pytest.mark.parametrize("overrides", list(PINNED), ids=" ".join)
def test_preset_run_identities_stay_pinned(overrides):
    from topk_repro.config.identity import identity_digest, run_identity

    assert identity_digest(run_identity(compose_config(list(overrides)))) == PINNED[overrides]


@pytest.mark.parametrize(
    ("experiment", "listed"),
    [
        ("demo", ["demo: 4 runs x 90 epochs", "loss=ce seed=1", "loss=smooth_topk_svm seed=0"]),
        (
            "study_cpu",
            ["study_cpu: 18 runs x 90 epochs", "loss=smooth_topk_svm dataset.noise.p=0.8 seed=2"],
        ),
        (
            "data_size_cpu",
            [
                "data_size_cpu: 24 runs x 90 epochs",
                "loss=ce dataset.train_size=250 seed=0",
                "loss=smooth_topk_svm dataset.train_size=2000 seed=2",
            ],
        ),
    ],
)
def test_the_cpu_studies_plans_list_their_seeds_and_sizes(experiment, listed):
    out = run_script_here("plan_sweep.py", f"experiment={experiment}", "paths.runs_dir=/none")
    for line in listed:
        assert line in out, line


STUDIES_WITH_CLAIMS = ["study_cpu", "data_size_cpu", "cifar100_noise", "imagenet_subsets"]


@pytest.mark.parametrize("experiment", [*STUDIES_WITH_CLAIMS, "compare_losses"])
def test_each_study_is_under_the_protocol_of_the_claims_it_declares(experiment):
    """The settings each swept loss trains with, read as the claims check reads run folders:
    a sized study whose preset strays from its claims' protocol would never get a verdict."""
    import pandas as pd

    from topk_repro.config.identity import flatten
    from topk_repro.results.claims import FAMILIES, _svm_label
    from topk_repro.results.layout import baseline_label, loss_label
    from topk_repro.results.preconditions import protocol_deviations

    cfg = compose_config([f"experiment={experiment}"], return_hydra_config=True)
    rows = [
        flatten(
            OmegaConf.to_container(
                compose_config([f"experiment={experiment}", f"loss={loss}"]), resolve=True
            )
        )
        for loss in _swept_losses(cfg)
    ]
    runs = pd.DataFrame(rows)
    runs["loss"] = runs.apply(loss_label, axis=1)
    assert cfg.study.sized_for_claims and cfg.study.claims
    for family in cfg.study.claims:
        chosen = FAMILIES[family]
        found = protocol_deviations(
            runs, chosen.protocol, baseline_label(runs), _svm_label(runs), chosen.compared(runs)
        )
        assert found == [], (family, found)


def test_the_protocol_check_sees_a_preset_that_strays_from_it():
    """The test above can fail: the CPU data-size study at CE's learning rate is refused."""
    import pandas as pd

    from topk_repro.config.identity import flatten
    from topk_repro.results.claims import FAMILIES
    from topk_repro.results.layout import loss_label
    from topk_repro.results.preconditions import protocol_deviations

    rows = [
        flatten(
            OmegaConf.to_container(
                compose_config(["experiment=data_size_cpu", f"loss={loss}", "optim.lr=0.1"]),
                resolve=True,
            )
        )
        for loss in ("ce", "smooth_topk_svm")
    ]
    runs = pd.DataFrame(rows)
    runs["loss"] = runs.apply(loss_label, axis=1)
    found = protocol_deviations(
        runs, FAMILIES["data_size"].protocol, "CE", "SVM k=5 tau=0.1", ["SVM k=5 tau=0.1"]
    )
    assert found == ["other protocol: optim.lr of SVM k=5 tau=0.1 / CE = 1, the paper's 10"]
