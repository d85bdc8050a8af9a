"""Every setting means what it says: the config the engine, the identity and config.yaml use is
the one the schemas typed (booleans as booleans, numbers as numbers), and a component owns its
schema, so a new loss with its own parameter is one module, one YAML file, one registry line."""

import dataclasses
import json
import shutil
import sys

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from helpers import CONFIGS, compose_config, tiny_overrides
from topk_repro.engine import fit
from topk_repro.engine.identity import identity_digest, run_identity
from topk_repro.engine.settings import COMPONENT_GROUPS, ENGINE_GROUPS, typed_config

FALSE_SPELLINGS = ("false", "False", "no", "off", "0")
TRUE_SPELLINGS = ("true", "yes", "on", "1")


def _boolean_keys(schema, prefix: str = "") -> list[str]:
    """The dotted keys of a schema's boolean fields, nested sections included."""
    keys = []
    for field in dataclasses.fields(schema):
        if field.type is bool:
            keys.append(prefix + field.name)
        elif dataclasses.is_dataclass(field.type):
            keys += _boolean_keys(field.type, f"{prefix}{field.name}.")
    return keys


def _config_file_of(group: str, name: str) -> str:
    """The YAML file of a config group whose `name` is `name` (densenet: densenet40_40)."""
    for path in sorted((CONFIGS / group).glob("*.yaml")):
        if (yaml.safe_load(path.read_text()) or {}).get("name") == name:
            return path.stem
    raise AssertionError(f"no configs/{group}/*.yaml with name: {name}")


def _every_boolean() -> list[tuple[list[str], str]]:
    """(the overrides that select the group's choice, dotted key) for every boolean of every
    schema: the engine's groups and each registered component's."""
    cases = [([], f"{g}.{k}") for g, s in ENGINE_GROUPS.items() for k in _boolean_keys(s)]
    for group, registry in COMPONENT_GROUPS.items():
        for name, entry in registry.items():
            choice = [f"{group}={_config_file_of(group, name)}"]
            cases += [(choice, f"{group}.{key}") for key in _boolean_keys(entry.settings)]
    return cases


BOOLEANS = _every_boolean()


def test_the_walk_finds_the_known_switches():
    keys = {key for _, key in BOOLEANS}
    assert {"dataset.noise.on_val", "trainer.force", "optim.nesterov", "loss.imbalanced"} <= keys


@pytest.mark.parametrize(("choice", "key"), BOOLEANS, ids=[key for _, key in BOOLEANS])
def test_every_spelling_of_a_boolean_is_one_value_and_one_identity(choice, key):
    for value, spellings in ((False, FALSE_SPELLINGS), (True, TRUE_SPELLINGS)):
        digests = set()
        for spelling in spellings:
            cfg = compose_config([*choice, f"{key}={spelling}"])
            typed = typed_config(cfg)
            recorded = typed
            for part in key.split("."):
                recorded = recorded[part]
            assert recorded is value, (key, spelling, recorded)
            digests.add(identity_digest(run_identity(cfg)))
        assert len(digests) == 1, (key, value)


def test_on_val_no_keeps_validation_labels_clean_and_records_false(tmp_path):
    folders = {}
    for spelling in ("no", "false"):
        cfg = compose_config(
            tiny_overrides(
                tmp_path,
                "trainer.epochs=0",
                "dataset.noise.p=0.8",
                f"dataset.noise.on_val={spelling}",
            )
        )
        folders[spelling] = tmp_path / spelling
        fit.run(cfg, folders[spelling])
    labels = np.load(folders["no"] / "labels.npz")
    clean = np.load(folders["false"] / "labels.npz")
    assert (labels["val_labels"] == clean["val_labels"]).all()
    config = yaml.safe_load((folders["no"] / "config.yaml").read_text())
    assert config["dataset"]["noise"]["on_val"] is False
    record = json.loads((folders["no"] / "run.json").read_text())
    assert record["identity"]["dataset.noise.on_val"] is False


def test_a_quoted_number_is_the_number(tmp_path):
    quoted = compose_config(tiny_overrides(tmp_path, "trainer.epochs='2'", "optim.lr='0.05'"))
    plain = compose_config(tiny_overrides(tmp_path, "trainer.epochs=2", "optim.lr=0.05"))
    typed = typed_config(quoted)
    assert typed.trainer.epochs == 2 and isinstance(typed.trainer.epochs, int)
    assert typed.optim.lr == 0.05 and isinstance(typed.optim.lr, float)
    assert run_identity(quoted) == run_identity(plain)
    final = fit.run(quoted, tmp_path / "run")  # the engine compares it as a number
    assert final["epochs_completed"] == 2


def test_a_float_range_value_is_the_number_people_mean(tmp_path):
    drifted = compose_config(tiny_overrides(tmp_path, "dataset.noise.p=0.6000000000000001"))
    meant = compose_config(tiny_overrides(tmp_path, "dataset.noise.p=0.6"))
    assert identity_digest(run_identity(drifted)) == identity_digest(run_identity(meant))


THROWAWAY_MODULE = '''
"""A throwaway loss with a parameter no other loss has: gamma."""
from collections.abc import Mapping
from dataclasses import dataclass

import torch


@dataclass
class Settings:
    name: str
    tag: str
    gamma: float


def label(values: Mapping) -> str:
    return f"throwaway gamma={values['gamma']:g}"


def build(cfg, data):
    def loss(logits, labels):
        return cfg.gamma * torch.nn.functional.cross_entropy(logits.float(), labels)

    return loss, lambda logits: logits.float()
'''


def test_a_new_loss_with_its_own_parameter_is_one_module_one_yaml_one_registry_line(
    tmp_path, monkeypatch
):
    from topk_repro.components import Component
    from topk_repro.losses import LOSSES
    from topk_repro.results.layout import loss_label

    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    (configs / "loss" / "throwaway.yaml").write_text(
        "name: throwaway\ngamma: 0.5\ntag: throwaway-g${num:${loss.gamma}}\n"
    )
    (tmp_path / "throwaway_loss.py").write_text(THROWAWAY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import throwaway_loss

    monkeypatch.setitem(
        LOSSES,
        "throwaway",
        Component(throwaway_loss.build, throwaway_loss.Settings, throwaway_loss.label),
    )
    overrides = tiny_overrides(tmp_path, "trainer.epochs=1", "loss=throwaway", "loss.gamma=2")
    cfg = compose_config(overrides, config_dir=configs)
    final = fit.run(cfg, tmp_path / "run")
    assert final["status"] == "finished"
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["identity"]["loss.gamma"] == 2.0
    assert loss_label({"loss.name": "throwaway", "loss.gamma": 2.0}) == "throwaway gamma=2"
    with pytest.raises(ValueError, match="loss.gama: Key 'gama' not in 'Settings'"):
        fit.run(compose_config([*overrides, "+loss.gama=1"], config_dir=configs), tmp_path / "x")
    sys.modules.pop("throwaway_loss", None)


THROWAWAY_DATASET = '''
"""A throwaway data set: the synthetic set with a parameter of its own, `label_shift`."""
from dataclasses import dataclass

import torch

from topk_repro.data.cifar import SyntheticSettings, build_synthetic


@dataclass
class Settings(SyntheticSettings):
    label_shift: int


def build(cfg):
    bundle = build_synthetic(cfg)
    shifted = (bundle.train_labels + cfg.label_shift) % bundle.num_classes
    bundle.labels["train_noisy"] = shifted
    bundle.train.labels = torch.from_numpy(shifted)
    bundle.record["label_shift"] = cfg.label_shift
    return bundle
'''


def _throwaway_dataset(tmp_path, monkeypatch, yaml_lines: str):
    from topk_repro.components import Component
    from topk_repro.data import BUILDERS

    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    (configs / "dataset" / "shifted.yaml").write_text(yaml_lines)
    (tmp_path / "throwaway_dataset.py").write_text(THROWAWAY_DATASET)
    monkeypatch.syspath_prepend(str(tmp_path))
    import throwaway_dataset

    monkeypatch.setitem(
        BUILDERS, "shifted", Component(throwaway_dataset.build, throwaway_dataset.Settings)
    )
    return configs


def test_a_new_data_set_with_its_own_parameter_trains_through_the_base_schema(
    tmp_path, monkeypatch
):
    configs = _throwaway_dataset(
        tmp_path,
        monkeypatch,
        "defaults:\n  - synthetic\n  - _self_\nname: shifted\nlabel_shift: 3\n",
    )
    overrides = tiny_overrides(tmp_path, "trainer.epochs=1", "dataset=shifted")
    cfg = compose_config(overrides, config_dir=configs)
    assert fit.run(cfg, tmp_path / "run")["status"] == "finished"
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["identity"]["dataset.label_shift"] == 3.0
    assert record["dataset"]["label_shift"] == 3
    assert "dataset.root" not in record["identity"]  # the base schema's outside_identity()
    assert record["seeds"] == {"train": 0, "noise": 0, "split": 1234}
    sys.modules.pop("throwaway_dataset", None)


def test_a_data_set_missing_a_base_field_is_refused_at_the_config_check(tmp_path, monkeypatch):
    from topk_repro.engine.settings import check_config

    configs = _throwaway_dataset(
        tmp_path,
        monkeypatch,
        "defaults:\n  - synthetic\n  - _self_\nname: shifted\nlabel_shift: 3\n",
    )
    cfg = compose_config(tiny_overrides(tmp_path, "dataset=shifted"), config_dir=configs)
    OmegaConf.set_struct(cfg, False)
    del cfg.dataset["split_seed"]  # a data set whose config lacks a field every data set has
    with pytest.raises(ValueError, match="dataset.split_seed: missing"):
        check_config(cfg)
    sys.modules.pop("throwaway_dataset", None)
