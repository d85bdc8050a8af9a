"""Run identity: a run is exactly what its config says (folders, resume, finished runs)."""

import json

import pytest
from omegaconf import OmegaConf

from helpers import compose_config, tiny_overrides
from topk_repro.config.identity import RunFolderConflict, run_identity
from topk_repro.engine import fit


def run_folder(tmp_path, *overrides: str) -> str:
    """The folder Hydra would give a single run with these overrides."""
    from hydra import compose, initialize_config_dir

    from helpers import CONFIGS

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", tiny_overrides(tmp_path, *overrides), return_hydra_config=True)
    return OmegaConf.select(cfg, "hydra.run.dir")


@pytest.mark.parametrize(
    "override",
    [
        "optim.lr=0.01",
        "model.width=16",
        "trainer.epochs=3",
        "trainer.batch_size=20",
        "optim.weight_decay=0.001",
        "dataset.noise.seed=3",
        "dataset.split_seed=5",
        "loss=hard_topk_svm",
    ],
)
def test_runs_that_differ_in_any_setting_get_different_folders(tmp_path, override):
    assert run_folder(tmp_path) != run_folder(tmp_path, override)


def test_equal_settings_written_differently_share_a_folder(tmp_path):
    assert run_folder(tmp_path, "dataset.noise.p=0") == run_folder(tmp_path, "dataset.noise.p=0.0")
    folder = run_folder(tmp_path, "dataset.noise.p=0.0", "trainer.progress=true")
    assert folder == run_folder(tmp_path, "dataset.num_workers=3", "paths.data_dir=elsewhere")
    assert folder.split("/")[-1].startswith("ce-p0-block-n400-s0-")


def test_identity_leaves_out_only_keys_that_cannot_change_results(tmp_path):
    identity = run_identity(compose_config(tiny_overrides(tmp_path)))
    assert identity["optim.lr"] == 0.05 and identity["seed"] == 0.0
    assert not any(k.startswith(("paths.", "logger.")) for k in identity)
    assert "trainer.progress" not in identity and "dataset.num_workers" not in identity


def test_changed_settings_never_reuse_a_folder(tmp_path, capsys):
    folder = tmp_path / "run"
    cfg = compose_config(tiny_overrides(tmp_path, "trainer.epochs=1", "optim.lr=0.1"))
    first = fit.run(cfg, folder)
    config_before = (folder / "config.yaml").read_text()
    record = json.loads((folder / "run.json").read_text())
    assert record["identity"]["optim.lr"] == 0.1 and len(record["identity_digest"]) == 10

    changed = compose_config(tiny_overrides(tmp_path, "trainer.epochs=1", "optim.lr=0.01"))
    with pytest.raises(RunFolderConflict, match=r"optim.lr: 0.1 -> 0.01"):
        fit.run(changed, folder)  # finished with another lr: not "already finished"
    assert (folder / "config.yaml").read_text() == config_before

    longer = compose_config(tiny_overrides(tmp_path, "trainer.epochs=3", "optim.lr=0.1"))
    with pytest.raises(RunFolderConflict, match=r"trainer.epochs: 1 -> 3\n"):
        fit.run(longer, folder)
    same = fit.run(
        compose_config(tiny_overrides(tmp_path, "trainer.epochs=1", "optim.lr=0.1")), folder
    )
    assert same == first and "already finished" in capsys.readouterr().out


def test_resume_with_a_changed_config_is_refused(tmp_path):
    folder = tmp_path / "run"
    cfg = compose_config(tiny_overrides(tmp_path, "trainer.epochs=0"))
    fit.run(cfg, folder)  # a started, unfinished run
    changed = compose_config(tiny_overrides(tmp_path, "optim.lr=0.01"))
    with pytest.raises(RunFolderConflict, match=r"optim.lr: 0.05 -> 0.01"):
        fit.run(changed, folder)
    assert not (folder / "metrics.jsonl").exists()


def test_folder_without_a_recorded_identity_is_not_reused(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"experiment": "old"}))
    with pytest.raises(RunFolderConflict, match="without its identity"):
        fit.run(compose_config(tiny_overrides(tmp_path)), folder)


def test_run_json_records_the_commit_of_the_code_the_process_loaded(tmp_path, monkeypatch):
    """A long-lived worker keeps the code it imported while HEAD moves: run.json names the
    commit that was checked out when the engine was imported, not a later HEAD."""
    from topk_repro.engine import record

    loaded = dict(record.GIT_AT_IMPORT)
    monkeypatch.setattr(record, "_git", lambda *args: "a later commit")
    fit.run(compose_config(tiny_overrides(tmp_path, "trainer.epochs=1")), tmp_path / "run")
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())["git"]
    assert recorded == loaded and recorded["commit"] != "a later commit"


# The settings that cannot change a run's results, as a reviewed list: a key, or a section and
# all its keys.  Every other key of every config group is in the identity (the test below).
OUTSIDE_IDENTITY = (
    "hydra",
    "paths",
    "logger",
    "experiment_name",
    "run_name",
    "per_loss",  # resolved into optim.* and loss.*, which are in the identity
    "study",
    "per_optim",
    "resources",
    "diagnostics",
    "dataset.download",
    "dataset.num_workers",
    "dataset.root",
    "dataset.tag",
    "loss.tag",
    "model.tag",
    "trainer.device",
    "trainer.cpu_threads",
    "trainer.eval_batch_size",
    "trainer.progress",
    "trainer.force",
)


def _changed(value):
    """Another value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 1.5 + 1
    if isinstance(value, str):
        return value + "_changed"
    if isinstance(value, list):
        return [*value, value[-1] if value else 1]
    return 1  # None


def _with(config: dict, key: str, value) -> dict:
    changed = json.loads(json.dumps(config))
    section = changed
    *path, last = key.split(".")
    for part in path:
        section = section[part]
    section[last] = value
    return changed


def _every_component() -> list[list[str]]:
    """Configs that together hold every file of every component group (and both presets that
    bring their own keys)."""
    from helpers import CONFIGS

    groups = {
        g: sorted(p.stem for p in (CONFIGS / g).glob("*.yaml"))
        for g in ("loss", "dataset", "model", "optim")
    }
    longest = max(len(files) for files in groups.values())
    return [
        [f"{g}={files[i % len(files)]}" for g, files in groups.items()] for i in range(longest)
    ] + [["experiment=imagenet_subsets"], ["experiment=demo"]]


@pytest.mark.parametrize("overrides", _every_component(), ids=" ".join)
def test_every_setting_changes_the_digest_unless_it_cannot_change_results(overrides):
    from topk_repro.config.identity import flatten, identity_digest

    config = OmegaConf.to_container(compose_config(overrides), resolve=True)
    digest = identity_digest(run_identity(config))
    for key, value in flatten(config).items():
        outside = any(key == name or key.startswith(f"{name}.") for name in OUTSIDE_IDENTITY)
        moved = identity_digest(run_identity(_with(config, key, _changed(value)))) != digest
        assert moved != outside, f"{key}: digest {'changed' if moved else 'unchanged'}"
