"""The scripts: the benchmarks run and write the JSON they promise (no timing is asserted), and
every script runs against the installed packages."""

import json
import re
import subprocess
import sys

import pytest

from helpers import ROOT, run_checked, script_command


@pytest.mark.slow
def test_bench_loss_quick_writes_rows(tmp_path):
    out = tmp_path / "bench.json"
    run_checked(script_command("bench_loss.py", "--quick", "--out", str(out)))
    rows = json.loads(out.read_text())["rows"]
    assert {(r["k"], r["tau"]) for r in rows} == {(1, 1.0), (1, 0.1), (5, 1.0), (5, 0.1)}
    assert all(r["smooth_topk_ms"] > 0 and r["ce_ms"] > 0 for r in rows)


def test_bench_data_writes_both_paths(tmp_path):
    out = tmp_path / "bench.json"
    command = script_command("bench_data.py", "--images", "640", "--workers", "0")
    run_checked([*command, "--out", str(out)])
    paths = {row["path"] for row in json.loads(out.read_text())["rows"]}
    assert paths == {"standard", "device"}


@pytest.mark.slow
def test_bench_step_times_both_losses(tmp_path):
    out = tmp_path / "step.json"
    command = script_command("bench_step.py", "--model", "cifar_small", "--steps", "2")
    run_checked([*command, "--out", str(out)])
    record = json.loads(out.read_text())
    assert set(record["median_ms"]) == {"ce", "smooth_topk_svm"} and record["ratio"] > 0


SCRIPTS = sorted((ROOT / "scripts").glob("*.py")) + sorted((ROOT / "scripts").glob("*.sh"))
# mutation.py runs the tests against a mutated copy of the sources, which must shadow the
# installed package: its PYTHONPATH is the point of it.
USERS_SCRIPTS = [path for path in SCRIPTS if path.name != "mutation.py"]


@pytest.mark.parametrize("script", USERS_SCRIPTS, ids=[path.name for path in USERS_SCRIPTS])
def test_scripts_import_the_installed_packages(script):
    """No script puts the checkout's folders on the import path: they run as users run them,
    against the installed packages (make setup; scripts/gpu_checks.sh installs them)."""
    text = script.read_text()
    assert not re.search(r"sys\.path\.(insert|append)|PYTHONPATH=", text)


@pytest.mark.slow
@pytest.mark.parametrize(
    "script",
    [p for p in SCRIPTS if p.suffix == ".py" and "argparse" in p.read_text()],
    ids=lambda path: path.name,
)
def test_every_script_answers_help_from_outside_the_checkout(script, tmp_path):
    result = subprocess.run(
        [sys.executable, str(script), "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout
