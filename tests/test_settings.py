"""Every setting means what it says: the config the engine, the identity and config.yaml use is
the one the schemas typed (booleans as booleans, numbers as numbers), and a component owns its
schema (tests/test_extending.py adds one of each kind)."""

import dataclasses
import json

import numpy as np
import pytest
import yaml

from helpers import CONFIGS, compose_config, tiny_overrides
from topk_repro.config.identity import identity_digest, run_identity
from topk_repro.config.settings import COMPONENT_GROUPS, ENGINE_GROUPS, typed_config
from topk_repro.engine import fit

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
