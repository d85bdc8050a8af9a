"""W&B as users meet it, read back from offline files: one continuous history across a resume,
quiet sweeps, the aggregated tables and figures, the report spec, and syncing a whole sweep."""

import json
import subprocess
from pathlib import Path

import pytest

from helpers import compose_config, offline_history, run_checked, script_command, tiny_overrides
from topk_repro.engine import fit
from topk_repro.engine.interrupt import Interrupted
from topk_repro.run_files import BEST_IN_FINAL


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

    output, errors = capsys.readouterr()
    assert output.count("logs offline in") == 2  # one line per segment ...
    assert "wandb:" not in output + errors  # ... and none of W&B's own ("Symlinked ...")
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
    for key in ("status", "test/top1", "test/top5"):
        assert summary[key] == pytest.approx(final[key]) if key != "status" else final[key]
    assert summary["best/val/top5"] == pytest.approx(final["best_val/top5"])


@pytest.fixture(scope="module")
def wandb_tables(tiny_sweep, tmp_path_factory) -> Path:
    """`make tables` of the tiny sweep with its aggregates logged offline to W&B: the output
    folder."""
    out = tmp_path_factory.mktemp("wandb_tables")
    run_checked(
        script_command(
            "make_tables.py",
            *("--runs-dir", str(tiny_sweep / "runs"), "--out-dir", str(out)),
            *("--wandb-project", "smooth-topk", "--wandb-mode", "offline"),
        ),
        cwd=out,
    )
    return out


@pytest.mark.slow
@pytest.mark.xdist_group("tiny_sweep")
def test_make_tables_logs_each_experiments_tables_and_figures(wandb_tables):
    history, _, runs = offline_history(wandb_tables)
    assert len(runs) == 1 and runs[0].job_type == "summary" and runs[0].run_group == "mini"
    logged = {
        "/".join(key.split("/")[:2])  # a table or an image is logged as a nested value
        for row in history
        for key in row
        if key.startswith(("table/", "figure/"))
    }
    for stem in ("mini", "mini_vs_ce", "mini_memorisation", "mini_topk"):
        assert f"table/{stem}" in logged, stem
    for stem in ("mini", "mini_memorisation", "mini_topk"):
        assert f"figure/{stem}" in logged, stem


@pytest.mark.slow
@pytest.mark.xdist_group("tiny_sweep")
def test_the_report_spec_names_every_loss_and_both_metrics(tiny_sweep, tmp_path):
    spec_path = tmp_path / "report.json"
    command = script_command(
        "wandb_report.py",
        *("--runs-dir", str(tiny_sweep / "runs"), "--experiment", "mini"),
        *("--entity", "someone", "--out", str(spec_path), "--dry-run"),
    )
    done = run_checked(command)
    assert "valid" in done.stdout and "would create in someone/smooth-topk" in done.stdout
    spec = json.loads(spec_path.read_text())
    grids = [block["metadata"] for block in spec["blocks"] if block["type"] == "panel-grid"]
    runsets = {runset["name"]: runset for grid in grids for runset in grid["runSets"]}
    assert {"ce", "smooth_topk_svm", "noise p 0", "noise p 0.4", "summary"} <= set(runsets)
    loss_filter = runsets["smooth_topk_svm"]["filters"]["filters"]
    assert loss_filter[1]["key"] == {"section": "config", "name": "loss.name"}
    assert loss_filter[1]["value"] == "smooth_topk_svm"
    text = json.dumps(spec)
    for name in ("test/top1", "test/top5", "val/top5", "figure/mini", "figure/mini_memorisation"):
        assert name in text, name


@pytest.mark.slow
@pytest.mark.xdist_group("tiny_sweep")
def test_sync_finds_every_offline_run_of_a_sweep(tiny_sweep):
    command = script_command("sync_wandb.py", str(tiny_sweep / "runs" / "mini"), "--dry-run")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0 and "4 offline W&B runs" in done.stdout, done.stdout


@pytest.mark.slow
def test_wandb_offline_run_lives_in_run_folder_and_holds_metrics(tmp_path):
    cfg = compose_config(
        tiny_overrides(tmp_path, "logger=wandb", "logger.mode=offline", "experiment_name=wb")
    )
    final = fit.run(cfg, tmp_path / "run")
    logs = list((tmp_path / "run" / "wandb").glob("offline-run-*/*.wandb"))
    assert len(logs) == 1
    history, summary, runs = offline_history(tmp_path / "run")
    assert len(runs) == 1
    run_record = json.loads((tmp_path / "run" / "run.json").read_text())
    for run in runs:
        assert run.run_group == "wb" and run.job_type == "ce"
        name = f"{cfg.run_name}-{run_record['identity_digest']}"  # as the run folder's
        assert run.display_name == name
        assert {"loss:ce", "experiment:wb", "noise:block-p0"} <= set(run.tags)
        config = {item.key: json.loads(item.value_json) for item in run.config.update}
        assert config["run"]["identity_digest"] == run_record["identity_digest"]
        assert config["run"]["data"] == {"name": "synthetic", "official": False}
        assert config["run"]["world_size"] == 1
    assert [row["epoch"] for row in history] == [1, 2]
    assert {"val/top5", "train/loss"} <= set(history[0])
    # The summary keeps every metric's last epoch (W&B's way), the best epoch's under best/*,
    # and final.json's values.
    last = [row for row in history if "val/top5" in row][-1]
    for key in ("val/top5", "val/top1", "train/loss", "lr"):
        assert summary[key] == pytest.approx(last[key]), key
    assert summary["best/val/top5"] == pytest.approx(final["best_val/top5"])
    assert summary["best/epoch"] == final["best_epoch"]
    for key, value in final.items():
        if key in BEST_IN_FINAL:  # held once, under best/*
            assert key not in summary and summary[BEST_IN_FINAL[key]] == pytest.approx(value)
            continue
        assert summary[key] == (pytest.approx(value) if isinstance(value, float) else value), key
