"""Shared fixtures (the helpers they use are in helpers.py)."""

from pathlib import Path

import pytest

from helpers import write_cifar_fixture


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    write_cifar_fixture(tmp_path / "cifar")
    return tmp_path / "cifar"
