"""docs/extending.md, followed to the letter: a new loss, data set, model, optimizer and study,
each added as its module (here, a module on a temporary path), its config file (in a temporary
copy of the configs) and its registry line, then trained for one epoch.  Nothing else of the
project is touched, and a schema that does not extend its group's base is refused."""

import importlib
import itertools
import json
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from helpers import CONFIGS, compose_config, run_script_here, tiny_overrides
from topk_repro.config.components import Component
from topk_repro.config.settings import COMPONENT_GROUPS, check_config
from topk_repro.engine import fit

LOSS_MODULE = '''
"""A throwaway loss with a parameter no other loss has: gamma."""
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from topk_repro.config.components import LossSettings, above


@dataclass
class Settings(LossSettings):
    gamma: float


def check(cfg, num_classes: int) -> None:
    above("loss.gamma", cfg.gamma, 0)


def label(values: Mapping) -> str:
    return f"throwaway gamma={values['gamma']:g}"


def build(cfg, data):
    def loss(logits, labels):
        return cfg.gamma * torch.nn.functional.cross_entropy(logits.float(), labels)

    return loss, lambda logits: logits.float()
'''

DATASET_MODULE = '''
"""A throwaway data set of random images, its bundle built from the required fields only."""
from dataclasses import dataclass

import numpy as np
import torch

from topk_repro.config.components import DatasetSettings, at_least
from topk_repro.data.bundle import DataBundle


@dataclass
class Settings(DatasetSettings):
    images_per_split: int


def check(cfg, num_classes: int) -> None:
    at_least("dataset.images_per_split", cfg.images_per_split, 1)


def _split(generator, count: int, num_classes: int):
    images = torch.rand(count, 3, 32, 32, generator=generator)
    labels = torch.randint(0, num_classes, (count,), generator=generator)
    return torch.utils.data.TensorDataset(images, labels), labels.numpy()


def build(cfg) -> DataBundle:
    generator = torch.Generator().manual_seed(cfg.split_seed)
    train, train_labels = _split(generator, cfg.images_per_split, cfg.num_classes)
    val, _ = _split(generator, cfg.images_per_split, cfg.num_classes)
    test, _ = _split(generator, cfg.images_per_split, cfg.num_classes)
    return DataBundle(
        train=train,
        val=val,
        test=test,
        num_classes=cfg.num_classes,
        name=cfg.name,
        train_labels=np.asarray(train_labels),
    )
'''

MODEL_MODULE = '''
"""A throwaway model: a linear map of the pooled image."""
from dataclasses import dataclass

from torch import nn

from topk_repro.config.components import ModelSettings, at_least


@dataclass
class Settings(ModelSettings):
    pool: int


def check(cfg, num_classes: int) -> None:
    at_least("model.pool", cfg.pool, 1)


def pooled_linear(num_classes: int, pool: int) -> nn.Module:
    head = nn.Linear(3 * pool**2, num_classes)
    return nn.Sequential(nn.AdaptiveAvgPool2d(pool), nn.Flatten(), head)
'''

OPTIMIZER_MODULE = '''
"""A throwaway optimizer: plain SGD with its own `dampening`."""
from dataclasses import dataclass

import torch

from topk_repro.config.components import OptimizerSettings, at_least


@dataclass
class PlainSgdSettings(OptimizerSettings):
    dampening: float


def check_plain_sgd(cfg, num_classes: int) -> None:
    at_least("optim.dampening", cfg.dampening, 0)


def build_plain_sgd(cfg, parameters) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        parameters, lr=cfg.lr, weight_decay=cfg.weight_decay, dampening=cfg.dampening
    )
'''

CONFIG_FILES = {
    "loss/throwaway.yaml": "name: throwaway\ngamma: 0.5\ntag: throwaway-g${num:${loss.gamma}}\n",
    "dataset/random.yaml": (
        "name: random\ntag: random\nroot: ${paths.data_dir}/unused\nnum_classes: 7\n"
        "split_seed: 3\nloader: standard\nnum_workers: 0\nimages_per_split: 40\n"
    ),
    "model/pooled.yaml": "name: pooled\npool: 2\n",
    "optim/plain_sgd.yaml": (
        "name: plain_sgd\nlr: ${oc.select:per_optim.plain_sgd.lr,0.05}\nweight_decay: 0.0\n"
        "dampening: 0.1\nmilestones: [2]\ngamma: 0.1\n"
    ),
}
MODULES = {
    "throwaway_loss": LOSS_MODULE,
    "throwaway_dataset": DATASET_MODULE,
    "throwaway_model": MODEL_MODULE,
    "throwaway_optimizer": OPTIMIZER_MODULE,
}


@pytest.fixture
def extended(tmp_path, monkeypatch):
    """A copy of the configs with the four config files, the four modules importable, and
    their registry lines; every module removed again afterwards."""
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    for name, text in CONFIG_FILES.items():
        (configs / name).write_text(text)
    modules = tmp_path / "modules"
    modules.mkdir()
    for name, text in MODULES.items():
        (modules / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(modules))
    loss, dataset, model, optimizer = (importlib.import_module(name) for name in MODULES)
    registries = COMPONENT_GROUPS
    lines = {
        ("loss", "throwaway"): Component(loss.build, loss.Settings, loss.check, loss.label),
        ("dataset", "random"): Component(dataset.build, dataset.Settings, dataset.check),
        ("model", "pooled"): Component(model.pooled_linear, model.Settings, model.check),
        ("optim", "plain_sgd"): Component(
            optimizer.build_plain_sgd, optimizer.PlainSgdSettings, optimizer.check_plain_sgd
        ),
    }
    for (group, name), entry in lines.items():
        monkeypatch.setitem(registries[group], name, entry)
    yield configs
    for name in MODULES:
        sys.modules.pop(name, None)


def _overrides(tmp_path, *choices: str) -> list[str]:
    """The tiny CPU run with `choices` (`group=name` first, then its keys), leaving out the tiny
    run's own keys of each group chosen anew."""
    chosen = {choice.split("=")[0] for choice in choices if "." not in choice.split("=")[0]}
    kept = [
        item
        for item in tiny_overrides(tmp_path, "trainer.epochs=1")
        if item.split("=")[0].split(".")[0] not in chosen
    ]
    return [*kept, *choices]


def _refused(configs, tmp_path, message: str, *choices: str) -> None:
    """The config check refuses `choices` with a ValueError matching `message`."""
    with pytest.raises(ValueError, match=message):
        check_config(compose_config(_overrides(tmp_path, *choices), configs))


def _trained_record(configs, tmp_path, *choices: str) -> dict:
    cfg = compose_config(_overrides(tmp_path, *choices), configs)
    assert fit.run(cfg, tmp_path / "run")["status"] == "finished"
    return json.loads((tmp_path / "run" / "run.json").read_text())


def test_a_new_loss_trains_and_names_its_column(extended, tmp_path):
    from topk_repro.results.layout import loss_label

    record = _trained_record(extended, tmp_path, "loss=throwaway", "loss.gamma=2")
    assert record["identity"]["loss.gamma"] == 2.0
    assert loss_label({"loss.name": "throwaway", "loss.gamma": 2.0}) == "throwaway gamma=2"
    unknown = "loss.gama: Key 'gama' not in 'Settings'"
    _refused(extended, tmp_path, unknown, "loss=throwaway", "+loss.gama=1")
    positive = "loss.gamma must be a finite number > 0"
    _refused(extended, tmp_path, positive, "loss=throwaway", "loss.gamma=0")


def test_a_new_data_set_trains_from_the_bundles_required_fields(extended, tmp_path):
    record = _trained_record(extended, tmp_path, "dataset=random")
    assert record["dataset"] == {"name": "random"}
    assert record["identity"]["dataset.images_per_split"] == 40.0
    assert "dataset.root" not in record["identity"]  # the base schema's outside_identity()
    labels = dict(np.load(tmp_path / "run" / "labels.npz"))
    assert list(labels) == ["train_noisy"] and len(labels["train_noisy"]) == 40
    own = "dataset.images_per_split must be a finite number >= 1"
    _refused(extended, tmp_path, own, "dataset=random", "dataset.images_per_split=0")
    base = "dataset.loader must be 'standard' or 'device'"  # the registry checks the base's keys
    _refused(extended, tmp_path, base, "dataset=random", "dataset.loader=bogus")


def test_a_new_model_trains(extended, tmp_path):
    record = _trained_record(extended, tmp_path, "model=pooled", "model.pool=3")
    assert record["identity"]["model.pool"] == 3.0
    assert record["parameters"] == 3 * 3**2 * 100 + 100  # the linear map to 100 classes


def test_a_new_optimizer_trains_with_a_presets_values(extended, tmp_path):
    record = _trained_record(extended, tmp_path, "optim=plain_sgd", "+per_optim.plain_sgd.lr=0.02")
    assert record["identity"]["optim.lr"] == 0.02
    assert record["identity"]["optim.dampening"] == 0.1
    own = "optim.dampening must be a finite number >= 0"
    _refused(extended, tmp_path, own, "optim=plain_sgd", "optim.dampening=-1")
    base = "optim.lr must be a finite number > 0"  # the registry checks the base's keys
    _refused(extended, tmp_path, base, "optim=plain_sgd", "optim.lr=-1")


STUDY = """# @package _global_
experiment_name: tiny_study
dataset:
  noise:
    mode: pairflip
study:
  row: dataset.noise.p
  row_name: flip p
  claims: [noise]
hydra:
  sweeper:
    params:
      loss: ce,smooth_topk_svm
      dataset.noise.p: 0.0,0.5
"""


def test_a_new_study_runs_its_grid_into_its_own_tables(tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    (configs / "experiment" / "tiny_study.yaml").write_text(STUDY)
    preset = compose_config(["experiment=tiny_study"], configs, return_hydra_config=True)
    grid = {key: str(values).split(",") for key, values in preset.hydra.sweeper.params.items()}
    for point in itertools.product(*grid.values()):
        choices = [f"{key}={value}" for key, value in zip(grid, point, strict=True)]
        cfg = compose_config(
            tiny_overrides(tmp_path, "experiment=tiny_study", "trainer.epochs=1", *choices),
            configs,
        )
        folder = tmp_path / "runs" / cfg.experiment_name / cfg.run_name
        assert fit.run(cfg, folder)["status"] == "finished"
    run_script_here(
        "make_tables.py",
        *("--runs-dir", str(tmp_path / "runs"), "--out-dir", str(tmp_path / "tables")),
    )
    table = pd.read_csv(tmp_path / "tables" / "tiny_study.csv")
    assert sorted(table["row"].unique()) == [0.0, 0.5]
    assert sorted(table["loss"].unique()) == ["CE", "SVM k=5 tau=1"]
    assert "flip p" in (tmp_path / "tables" / "tiny_study.md").read_text()
    claims = (tmp_path / "tables" / "claims.md").read_text()
    assert "tiny_study" in claims


@pytest.mark.parametrize("group", sorted(COMPONENT_GROUPS))
def test_a_schema_that_does_not_extend_its_groups_base_is_refused(group):
    from dataclasses import dataclass

    @dataclass
    class Loose:
        name: str

    registry = COMPONENT_GROUPS[group]
    with pytest.raises(TypeError, match=f"must extend {registry.base.__name__}"):
        registry["loose"] = Component(lambda *a: None, Loose, lambda cfg, n: None)
    assert "loose" not in registry


def test_a_data_set_config_missing_a_base_field_is_refused_at_the_config_check(extended, tmp_path):
    cfg = compose_config(_overrides(tmp_path, "dataset=random"), extended)
    OmegaConf.set_struct(cfg, False)
    del cfg.dataset["split_seed"]  # a data set whose config lacks a field every data set has
    with pytest.raises(ValueError, match="dataset.split_seed: missing"):
        check_config(cfg)
