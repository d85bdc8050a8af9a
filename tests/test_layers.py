"""The layers' imports: building tables and reading configs never loads the engine (the config
layer, `topk_repro.config`, sits below it; docs: README, Layout)."""

import subprocess
import sys

import pytest

PROBE = (
    "import importlib, sys; importlib.import_module(sys.argv[1]); "
    "print(sorted(m for m in sys.modules if m.startswith('topk_repro.engine')))"
)


@pytest.mark.parametrize(
    "module",
    ["topk_repro.results.report", "topk_repro.results.wandb_export", "topk_repro.config.naming"],
)
def test_tables_and_the_config_layer_never_import_the_engine(module):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, module], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
