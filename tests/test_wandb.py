"""W&B as users meet it, read back from offline files: one continuous history across a resume,
quiet sweeps, the aggregated tables and figures, the report spec, and syncing a whole sweep."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import compose_config, offline_history, tiny_overrides
from topk_repro.engine import fit
from topk_repro.engine.interrupt import Interrupted

ROOT = Path(__file__).resolve().parents[1]


def wandb_overrides(tmp_path: Path, *extra: str) -> list[str]:
    return tiny_overrides(
        tmp_path, "logger=wandb", "logger.mode=offline", "experiment_name=wb", *extra
    )


@pytest.mark.slow
def test_an_interrupted_then_resumed_run_has_one_history_by_epoch(tmp_path, monkeypatch, capsys):
    cfg = compose_config(wandb_overrides(tmp_path, "trainer.epochs=3"))
    schedule = fit.learning_rate

    def stop_at_epoch_two(epoch, *args):
        if epoch == 2:
            raise Interrupted("SIGTERM")
        return schedule(epoch, *args)

    monkeypatch.setattr(fit, "learning_rate", stop_at_epoch_two)
    with pytest.raises(Interrupted):
        fit.run(cfg, tmp_path / "run")
    monkeypatch.setattr(fit, "learning_rate", schedule)
    final = fit.run(cfg, tmp_path / "run")

    output = capsys.readouterr().out
    assert output.count("logs offline in") == 2  # one line per segment ...
    assert "wandb:" not in output  # ... and none of W&B's own
    history, summary, runs = offline_history(tmp_path / "run")
    assert len(runs) == 2 and runs[0].run_id == runs[1].run_id  # the same W&B run, resumed
    epochs = [row["epoch"] for row in history if "val/top5" in row]
    assert epochs == [1, 2, 3]
    assert [row["_step"] for row in history if "val/top5" in row] == epochs
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    for row, logged in zip(metrics, [r for r in history if "val/top5" in r], strict=True):
        assert logged["val/top5"] == pytest.approx(row["val/top5"])
    assert summary["best/epoch"] == final["best_epoch"]
    saved = sorted((tmp_path / "run" / "wandb").glob("offline-run-*/files/final.json"))
    assert saved and json.loads(saved[-1].read_text()) == final  # the run's files hold it
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*/files/run.json"))
    for key in ("status", "test/top1", "test/top5", "best_val/top5"):
        assert summary[key] == pytest.approx(final[key]) if key != "status" else final[key]


@pytest.fixture(scope="module")
def tiny_wandb_sweep(tmp_path_factory) -> Path:
    """Two losses at two noise levels, logged offline to W&B, then `make tables` with the
    aggregates logged offline too."""
    tmp_path = tmp_path_factory.mktemp("sweep")
    command = [
        sys.executable,
        str(ROOT / "src" / "train.py"),
        "-m",
        "loss=ce,smooth_topk_svm",
        "dataset.noise.p=0.0,0.5",
        *tiny_overrides(tmp_path, "logger=wandb", "logger.mode=offline", "experiment_name=wbs"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("logs offline in") == 4 and "wandb:" not in done.stdout
    tables = [
        sys.executable,
        str(ROOT / "scripts" / "make_tables.py"),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--out-dir",
        str(tmp_path / "tables"),
        "--wandb-project",
        "smooth-topk",
        "--wandb-mode",
        "offline",
    ]
    made = subprocess.run(tables, capture_output=True, text=True, cwd=tmp_path)
    assert made.returncode == 0, made.stderr[-3000:]
    return tmp_path


@pytest.mark.slow
def test_make_tables_logs_each_experiments_tables_and_figures(tiny_wandb_sweep):
    history, _, runs = offline_history(tiny_wandb_sweep / "tables")
    assert len(runs) == 1 and runs[0].job_type == "summary" and runs[0].run_group == "wbs"
    logged = {
        "/".join(key.split("/")[:2])  # a table or an image is logged as a nested value
        for row in history
        for key in row
        if key.startswith(("table/", "figure/"))
    }
    for stem in ("wbs", "wbs_vs_ce", "wbs_memorisation", "wbs_topk"):
        assert f"table/{stem}" in logged, stem
    for stem in ("wbs", "wbs_memorisation", "wbs_topk"):
        assert f"figure/{stem}" in logged, stem


@pytest.mark.slow
def test_the_report_spec_names_every_loss_and_both_metrics(tiny_wandb_sweep):
    spec_path = tiny_wandb_sweep / "report.json"
    command = [
        sys.executable,
        str(ROOT / "scripts" / "wandb_report.py"),
        "--runs-dir",
        str(tiny_wandb_sweep / "runs"),
        "--experiment",
        "wbs",
        "--entity",
        "someone",
        "--out",
        str(spec_path),
        "--dry-run",
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "valid" in done.stdout and "would create in someone/smooth-topk" in done.stdout
    spec = json.loads(spec_path.read_text())
    grids = [block["metadata"] for block in spec["blocks"] if block["type"] == "panel-grid"]
    runsets = {runset["name"]: runset for grid in grids for runset in grid["runSets"]}
    assert {"ce", "smooth_topk_svm", "p=0", "p=0.5", "summary"} <= set(runsets)
    loss_filter = runsets["smooth_topk_svm"]["filters"]["filters"]
    assert loss_filter[1]["key"] == {"section": "config", "name": "loss.name"}
    assert loss_filter[1]["value"] == "smooth_topk_svm"
    text = json.dumps(spec)
    for name in ("test/top1", "test/top5", "val/top5", "figure/wbs", "figure/wbs_memorisation"):
        assert name in text, name


@pytest.mark.slow
def test_sync_finds_every_offline_run_of_a_sweep(tiny_wandb_sweep):
    command = [sys.executable, str(ROOT / "scripts" / "sync_wandb.py")]
    done = subprocess.run(
        [*command, str(tiny_wandb_sweep / "runs" / "wbs"), "--dry-run"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "4 offline W&B runs" in done.stdout, done.stdout
