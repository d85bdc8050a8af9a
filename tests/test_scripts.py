"""The benchmark scripts run and write the JSON they promise (no timing is asserted)."""

import json

import pytest

from helpers import run_checked, script_command


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
