"""The cluster path on a real SLURM: a sweep through the SLURM launcher, a 2-task run, a plain
`srun -n 2`, a pre-emption (USR2) that requeues the job and ends identical to an uninterrupted
run, and a request no node can run refused before submission.

They need a running scheduler (`bash scripts/slurm_local.sh up`: CI starts a single-node one)
and are skipped without one.  Each job asks for one CPU per process, so two fit on a 2-CPU node.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from helpers import compose_config, run_checked, tiny_overrides, train_command
from topk_repro.cluster import parse_sinfo, request_problems, value_problems
from topk_repro.engine import fit
from topk_repro.run_files import read_metrics


def _scheduler_answers() -> bool:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return False
    try:
        subprocess.run(["sinfo", "-h"], capture_output=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


needs_slurm = pytest.mark.skipif(
    not _scheduler_answers(), reason="no SLURM scheduler here (scripts/slurm_local.sh up)"
)
ONE_CPU = ["launcher=slurm_cpu", "resources.cpus_per_process=1", "resources.mem_gb=1"]


def _folders(runs: Path) -> list[Path]:
    return sorted(path.parent for path in runs.rglob("final.json"))


def _epochs(folder: Path) -> list[int]:
    return [row["epoch"] for row in read_metrics(folder / "metrics.jsonl")]


def test_a_request_is_judged_against_the_nodes_sinfo_reports():
    nodes = parse_sinfo("local*|2|24105|(null)\ngpu|64|512000|gpu:a100:8(S:0-1)\n")
    assert [(n.partition, n.default, n.cpus, n.gpus) for n in nodes] == [
        ("local", True, 2, 0),
        ("gpu", False, 64, 8),
    ]
    fits = {"tasks_per_node": 2, "cpus_per_task": 1, "mem_gb": 1, "gpus_per_node": 0}
    assert request_problems(fits, nodes) == []
    (problem,) = request_problems({**fits, "cpus_per_task": 8}, nodes)
    assert "cpus_per_task=8 x tasks_per_node=2 = 16 CPUs per node" in problem
    (problem,) = request_problems({**fits, "gpus_per_node": 1}, nodes)
    assert "gpus_per_node=1" in problem and "launcher=slurm_cpu" in problem
    assert request_problems({**fits, "gpus_per_node": 8, "partition": "gpu"}, nodes) == []
    (problem,) = request_problems({**fits, "partition": "nope"}, nodes)
    assert "hydra.launcher.partition=nope: no such partition" in problem


def test_sizes_no_cluster_can_honour_are_named():
    good = {"timeout_min": 60, "nodes": 1, "tasks_per_node": 2, "cpus_per_task": 1, "mem_gb": 4}
    assert value_problems(good) == []
    for key, value in (
        ("timeout_min", 0),
        ("nodes", 0),
        ("tasks_per_node", 0),
        ("cpus_per_task", -1),
        ("mem_gb", 0),
    ):
        (problem,) = value_problems({**good, key: value})
        assert problem.startswith(f"hydra.launcher.{key}={value}: must be"), problem
    nodes = parse_sinfo("local*|2|24105|(null)\n")
    (problem,) = request_problems({**good, "nodes": 3}, nodes)
    assert problem == "hydra.launcher.nodes=3, but the default partition has 1 nodes"


def _train_through_slurm(tmp_path: Path, *overrides: str, multirun: bool):
    """The tiny run through launcher=slurm_cpu (one CPU), its output captured."""
    command = train_command(*tiny_overrides(tmp_path), *ONE_CPU, *overrides, multirun=multirun)
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_a_slurm_launcher_without_multirun_is_refused_instead_of_training_here(tmp_path):
    result = _train_through_slurm(tmp_path, multirun=False)
    assert result.returncode != 0
    assert "launcher=slurm_cpu submits SLURM jobs only in a multirun: add -m" in result.stderr
    assert not (tmp_path / "runs").exists() or not _folders(tmp_path / "runs")


def test_a_request_of_no_time_is_refused_before_submission_even_without_sinfo(tmp_path):
    result = _train_through_slurm(tmp_path, "resources.time_min=0", multirun=True)
    assert result.returncode != 0
    assert "hydra.launcher.timeout_min=0: must be a whole number >= 1" in result.stderr


@pytest.mark.slow
@needs_slurm
def test_an_impossible_request_is_refused_before_submission(tmp_path):
    result = _train_through_slurm(tmp_path, "resources.cpus_per_process=512", multirun=True)
    assert result.returncode != 0
    assert "hydra.launcher.cpus_per_task=512 x tasks_per_node=1" in result.stderr
    assert not (tmp_path / "runs").exists() or not _folders(tmp_path / "runs")


@pytest.mark.slow
@needs_slurm
def test_a_sweep_through_the_slurm_launcher(tmp_path):
    run_checked(train_command(*tiny_overrides(tmp_path), *ONE_CPU, "seed=0,1", multirun=True))
    folders = _folders(tmp_path / "runs")
    assert len(folders) == 2
    for folder in folders:
        assert json.loads((folder / "final.json").read_text())["status"] == "finished"
        record = json.loads((folder / "run.json").read_text())
        assert record["processes"]["launcher"] == "submitit" and record["cpu_threads"] == 1


@pytest.mark.slow
@needs_slurm
def test_a_two_task_cpu_job_trains_one_run_together(tmp_path):
    overrides = [*ONE_CPU, "resources.cpu_processes=2"]
    run_checked(train_command(*tiny_overrides(tmp_path), *overrides, multirun=True))
    (folder,) = _folders(tmp_path / "runs")
    record = json.loads((folder / "run.json").read_text())
    assert record["processes"]["world_size"] == 2 and record["cpu_threads"] == 1
    assert _epochs(folder) == [1, 2]


@pytest.mark.slow
@needs_slurm
def test_a_plain_srun_of_two_tasks_trains_one_run_together(tmp_path):
    folder = tmp_path / "run"
    command = ["srun", "-N1", "-n2", "--cpus-per-task=1", "--mem=1G"]
    result = run_checked(
        [*command, *train_command(*tiny_overrides(tmp_path), f"paths.run_dir={folder}")]
    )
    record = json.loads((folder / "run.json").read_text())
    assert record["processes"] == {"world_size": 2, "launcher": "srun", "batch_per_process": 25}
    assert _epochs(folder) == [1, 2]
    assert result.stdout.count("run folder") == 1  # rank 0 speaks for the run


def _signal_after_first_epoch(runs: Path, sent: list) -> None:
    """Send USR2 to the job once its run has checkpointed epoch 1 (a pre-emption)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        folders = [p.parent for p in runs.rglob("metrics.jsonl")]
        if folders and _epochs(folders[0]):
            jobs = [path.name for path in runs.glob("*/.submitit/*") if path.is_dir()]
            if jobs:
                subprocess.run(["scancel", "--signal=USR2", jobs[0]], check=True)
                sent.append(jobs[0])
                break
        time.sleep(0.2)
    final = folders[0] / "final.json" if sent else None
    while sent and time.monotonic() < deadline:  # the segment's record, before the requeue
        if final.is_file() and json.loads(final.read_text())["status"] != "finished":
            sent.append(json.loads(final.read_text()))
            return
        time.sleep(0.2)


@pytest.mark.slow
@needs_slurm
def test_a_preempted_job_is_requeued_and_ends_identical_to_an_uninterrupted_run(tmp_path):
    overrides = tiny_overrides(tmp_path, "trainer.epochs=8", "trainer.cpu_threads=1")
    sent: list = []
    watcher = threading.Thread(target=_signal_after_first_epoch, args=(tmp_path / "runs", sent))
    watcher.start()
    run_checked(train_command(*overrides, *ONE_CPU, multirun=True), timeout=600)
    watcher.join()
    assert sent, "the job finished before it could be pre-empted"
    assert sent[1]["status"] == "preempted" and sent[1]["signal"] == "SIGUSR2"
    (folder,) = _folders(tmp_path / "runs")
    final = json.loads((folder / "final.json").read_text())
    assert final["status"] == "finished"
    assert _epochs(folder) == list(range(1, 9))  # each epoch once
    record = json.loads((folder / "run.json").read_text())
    assert len(record["segments"]) == 2  # the requeued job resumed the same folder

    reference = fit.run(compose_config(overrides), tmp_path / "uninterrupted")
    for key in ("test/top1", "test/top5", "best_epoch", "best_val/top5"):
        assert final[key] == reference[key], key
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["trainer"]["epochs"] == 8


@pytest.mark.slow
@needs_slurm
def test_the_sample_batch_script_trains_one_run_with_two_tasks(tmp_path):
    folder = tmp_path / "run"
    command = ["sbatch", "--wait", f"--output={tmp_path / 'job.out'}", "scripts/sbatch_example.sh"]
    run_checked(
        [*command, *tiny_overrides(tmp_path)],
        env={**os.environ, "PYTHON": sys.executable, "RUN_DIR": str(folder)},
        timeout=300,
    )
    record = json.loads((folder / "run.json").read_text())
    assert record["processes"]["world_size"] == 2 and record["processes"]["launcher"] == "srun"
    assert json.loads((folder / "final.json").read_text())["status"] == "finished"
