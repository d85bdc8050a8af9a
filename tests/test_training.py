"""A run from start to end: its folder, dry runs, the noise seed, a finished run not rerun, a
non-finite loss, the schedule, and a run stopped by SIGTERM then resumed."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf

from helpers import compose_config, run_checked, tiny_overrides, train_command
from smooth_topk import cpu_kernel
from topk_repro.engine import assembly, fit
from topk_repro.engine.loop import NonFiniteLoss
from topk_repro.evaluation import load_run
from topk_repro.optimizers import learning_rate

METRIC_KEYS = {
    "epoch",
    "train/loss",
    "train/top1",
    "train/top5",
    "val/top1",
    "val/top5",
    "lr",
    "epoch_time_s",
    "images_per_s",
}
FINAL_KEYS = {
    "status",
    "epochs_completed",
    "best_epoch",
    "best_val/top1",
    "best_val/top5",
    "test/top1",
    "test/top5",
    "last/test/top1",
    "last/test/top5",
    "train_time_s",
}
SCORE_KEYS = sorted(FINAL_KEYS - {"train_time_s"})


def test_learning_rate_schedule_counts_epochs_from_one():
    schedule = OmegaConf.create({"lr": 0.1, "milestones": [151, 226], "gamma": 0.1})
    rates = [learning_rate(e, schedule) for e in (1, 150, 151, 225, 226, 300)]
    assert rates == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_dry_run_writes_record_and_labels_only(tmp_path, capsys):
    cfg = compose_config(tiny_overrides(tmp_path, "trainer.epochs=0", "dataset.noise.p=0.4"))
    assert fit.run(cfg, tmp_path / "run") is None
    out = capsys.readouterr().out
    assert "train 400, val 200, test 200" in out and "M parameters" in out and "realised" in out
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"run.json", "labels.npz"} <= files and "final.json" not in files
    labels = np.load(tmp_path / "run" / "labels.npz")
    assert set(labels.files) >= {"train_index", "train_clean", "train_noisy", "val_index"}
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["loss_cpu_kernel"] is None  # cross-entropy: the kernel is not asked for
    assert record["loss_implementation"] is None


def test_same_noise_seed_same_labels_whatever_loss_or_training_seed(tmp_path):
    folders = []
    for loss, seed in (("ce", 0), ("smooth_topk_svm", 7)):
        cfg = compose_config(
            tiny_overrides(
                tmp_path, "trainer.epochs=0", f"loss={loss}", f"seed={seed}", "dataset.noise.p=0.6"
            )
        )
        fit.run(cfg, tmp_path / loss)
        folders.append(np.load(tmp_path / loss / "labels.npz"))
    assert (folders[0]["train_noisy"] == folders[1]["train_noisy"]).all()
    assert (folders[0]["train_noisy"] != folders[0]["train_clean"]).any()


def test_smoke_run_writes_complete_folder_and_finished_run_is_not_rerun(tmp_path, capsys):
    cfg = compose_config(tiny_overrides(tmp_path, "loss=smooth_topk_svm", "dataset.noise.p=0.2"))
    run_dir = tmp_path / "run"
    final = fit.run(cfg, run_dir)
    assert set(final) >= FINAL_KEYS and final["status"] == "finished"
    assert final["epochs_completed"] == 2
    names = (
        "config.yaml",
        "run.json",
        "labels.npz",
        "metrics.jsonl",
        "final.json",
        "last.pt",
        "best.pt",
    )
    for name in names:
        assert (run_dir / name).is_file(), name
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2] and set(rows[0]) >= METRIC_KEYS
    assert all(0 <= row["val/top5"] <= 100 for row in rows)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["seeds"] == {"train": 0, "noise": 0, "split": 1234}
    assert record["dataset"]["official"] is False and record["dataset"]["name"] == "synthetic"
    assert {"git", "versions", "host", "device", "start_time"} <= set(record)
    expected = "cpu_kernel" if cpu_kernel.available() else "pytorch"
    assert record["loss_implementation"] == expected
    kernel_file = cpu_kernel.status() if expected == "cpu_kernel" else None
    assert record["loss_cpu_kernel"] == kernel_file  # a CPU run of the smooth loss
    best = torch.load(run_dir / "best.pt", weights_only=True)
    assert best["epoch"] == final["best_epoch"]

    before = (run_dir / "metrics.jsonl").read_text()
    again = fit.run(cfg, run_dir)
    assert "already finished" in capsys.readouterr().out and again == final
    assert (run_dir / "metrics.jsonl").read_text() == before

    forced = compose_config(
        tiny_overrides(
            tmp_path, "loss=smooth_topk_svm", "dataset.noise.p=0.2", "trainer.force=true"
        )
    )
    fit.run(forced, run_dir)
    retrained = [p for p in tmp_path.iterdir() if p.name.startswith("run-retrain-")]
    assert len(retrained) == 1 and (retrained[0] / "final.json").is_file()


def test_non_finite_loss_fails_with_epoch_and_step(tmp_path, monkeypatch):
    real_build = assembly.build_criterion

    def nan_at_third_step(cfg, num_classes):
        criterion, transform = real_build(cfg, num_classes)
        calls = {"n": 0}

        def poisoned(logits, labels):
            calls["n"] += 1
            loss = criterion(logits, labels)
            return loss * float("nan") if calls["n"] == 3 else loss

        return poisoned, transform

    monkeypatch.setattr(assembly, "build_criterion", nan_at_third_step)
    cfg = compose_config(tiny_overrides(tmp_path))
    with pytest.raises(NonFiniteLoss, match="epoch 1, step 3"):
        fit.run(cfg, tmp_path / "run")
    final = json.loads((tmp_path / "run" / "final.json").read_text())
    assert final["status"] == "failed"
    assert "epoch 1, step 3" in final["reason"]


@pytest.mark.slow
def test_sigterm_to_the_process_group_then_a_resume_ends_like_an_uninterrupted_run(tmp_path):
    """What SLURM does at a time limit: SIGTERM to every process of the job, DataLoader workers
    included. The run records that it was interrupted; the same command resumes it, and it ends
    as an uninterrupted run of the same config ends."""
    epochs = 4
    overrides = tiny_overrides(
        tmp_path,
        f"trainer.epochs={epochs}",
        "loss=smooth_topk_svm",
        "dataset.noise.p=0.4",
        "dataset.train_size=1000",
        "dataset.synthetic.num_train=2000",
        "dataset.loader=standard",
        "dataset.num_workers=2",
    )
    expected = fit.run(compose_config(overrides), tmp_path / "straight")

    resumed = tmp_path / "resumed"
    command = train_command(*overrides, f"paths.run_dir={resumed}")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        metrics = resumed / "metrics.jsonl"
        if metrics.is_file() and metrics.read_text().strip():
            os.killpg(process.pid, signal.SIGTERM)  # the whole group, workers included
            break
        time.sleep(0.05)
    _, stderr = process.communicate(timeout=120)
    final = json.loads((resumed / "final.json").read_text())
    assert final["status"] == "interrupted", stderr.decode()[-2000:]
    assert final["epochs_completed"] < epochs
    assert process.returncode == 143

    result = run_checked(command)
    assert "resuming from epoch" in result.stdout
    final = json.loads((resumed / "final.json").read_text())
    assert {k: final[k] for k in SCORE_KEYS} == {k: expected[k] for k in SCORE_KEYS}
    rows = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == list(range(1, epochs + 1))
    assert (resumed / ".hydra" / "config.yaml").is_file()
    log = (resumed / "train.log").read_text()  # the console output of both segments
    assert "epoch 1/4" in log and "interrupted by SIGTERM" in log
    assert "resuming from epoch" in log and "finished: best epoch" in log


def test_the_run_folder_records_where_the_data_is_from_any_directory(tmp_path, monkeypatch):
    """paths.data_dir is relative by default; config.yaml holds the data's absolute place, so an
    evaluation started elsewhere reads the same data instead of generating a copy there."""
    monkeypatch.chdir(tmp_path)
    overrides = [o for o in tiny_overrides(tmp_path) if not o.startswith("paths.data_dir=")]
    cfg = compose_config([*overrides, "paths.data_dir=data", "trainer.epochs=1"])
    fit.run(cfg, tmp_path / "run")
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert recorded["dataset"]["root"] == str(tmp_path / "data" / "synthetic")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_run(tmp_path / "run").data_differences == []
    assert not (elsewhere / "data").exists()
