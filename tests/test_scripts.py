"""The benchmark scripts run and write the JSON they promise (no timing is asserted)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_loss_quick_writes_rows(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_loss.py"), "--quick", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    rows = json.loads(out.read_text())["rows"]
    assert {(r["k"], r["tau"]) for r in rows} == {(1, 1.0), (1, 0.1), (5, 1.0), (5, 0.1)}
    assert all(r["smooth_topk_ms"] > 0 and r["ce_ms"] > 0 for r in rows)


def test_bench_data_writes_both_paths(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_data.py"),
            "--images",
            "640",
            "--workers",
            "0",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    paths = {row["path"] for row in json.loads(out.read_text())["rows"]}
    assert paths == {"standard", "device"}


def test_bench_step_times_both_losses(tmp_path):
    out = tmp_path / "step.json"
    command = [sys.executable, str(ROOT / "scripts" / "bench_step.py"), "--model", "cifar_small"]
    subprocess.run([*command, "--steps", "2", "--out", str(out)], check=True, capture_output=True)
    record = json.loads(out.read_text())
    assert set(record["median_ms"]) == {"ce", "smooth_topk_svm"} and record["ratio"] > 0
