"""Shared fixtures (the helpers they use are in helpers.py)."""

from pathlib import Path

import pytest

from helpers import run_checked, tiny_sweep_overrides, train_command, write_cifar_fixture


@pytest.fixture(autouse=True, scope="session")
def _caches_in_a_temporary_folder(tmp_path_factory) -> None:
    """The framework's caches (the ImageNet index) go to a temporary folder, not the home of
    whoever runs the tests (subprocesses inherit it)."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("TOPK_REPRO_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    monkeypatch.undo()


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    write_cifar_fixture(tmp_path / "cifar")
    return tmp_path / "cifar"


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory) -> Path:
    """A folder whose `runs/mini/` holds the tiny sweep (`helpers.tiny_sweep_overrides`: 4 runs
    through `train.py -m`), trained once per test process for the table, claims and W&B tests;
    they share the xdist group "tiny_sweep", so a parallel run trains it once too."""
    folder = tmp_path_factory.mktemp("tiny_sweep")
    done = run_checked(train_command(*tiny_sweep_overrides(folder), multirun=True))
    assert done.stdout.count("logs offline in") == 4 and "wandb:" not in done.stdout
    return folder
