"""Faults a long run meets: damaged checkpoints, torn metrics, leftovers of a killed process, a
changed implementation on resume; and results that must not depend on the launcher or the number
of DataLoader workers. (SIGTERM to the whole process group is in test_training.py.)"""

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from helpers import (
    compose_config,
    human_labels,
    run_checked,
    script_command,
    tiny_overrides,
    train_command,
    write_cifar100n,
)
from topk_repro.data.cifar_format import read_split
from topk_repro.engine import fit
from topk_repro.engine.record import DataMismatch
from topk_repro.engine.run_dir import DamagedCheckpoint, RunDir
from topk_repro.run_files import read_metrics

SCORES = ("test/top1", "test/top5", "last/test/top1", "last/test/top5", "best_epoch")


def epochs_of(folder: Path) -> list[int]:
    return [
        json.loads(line)["epoch"] for line in (folder / "metrics.jsonl").read_text().splitlines()
    ]


def finished_then_unfinished(
    tmp_path, epochs: int = 3, extra: tuple[str, ...] = ()
) -> tuple[Path, object, dict]:
    """A finished run whose final.json is then removed, as if it had died after its last epoch."""
    folder = tmp_path / "run"
    cfg = compose_config(tiny_overrides(tmp_path, f"trainer.epochs={epochs}", *extra))
    final = fit.run(cfg, folder)
    (folder / "final.json").unlink()
    return folder, cfg, final


def test_damaged_last_checkpoint_resumes_from_the_previous_one(tmp_path, capsys):
    folder, cfg, expected = finished_then_unfinished(tmp_path)
    (folder / "last.pt").write_bytes((folder / "last.pt").read_bytes()[:1000])  # truncated
    with pytest.warns(RuntimeWarning, match="last.pt"):
        final = fit.run(cfg, folder)
    assert "resuming from previous.pt" in capsys.readouterr().out
    assert final["status"] == "finished" and epochs_of(folder) == [1, 2, 3]
    assert {k: final[k] for k in SCORES} == {k: expected[k] for k in SCORES}


def test_a_best_model_of_the_epoch_run_again_stays_consistent(tmp_path):
    folder, cfg, _ = finished_then_unfinished(tmp_path)
    # best.pt as a run that is not bit-reproducible may leave it: written at epoch 3, before
    # last.pt was damaged, with a validation score the re-run of epoch 3 will not reach.
    best = torch.load(folder / "best.pt", weights_only=True)
    best.update(epoch=3, best={"epoch": 3, "val/top1": 99.0, "val/top5": 100.0})
    torch.save(best, folder / "best.pt")
    (folder / "last.pt").write_bytes(b"damaged")
    with pytest.warns(RuntimeWarning, match="last.pt"):
        final = fit.run(cfg, folder)
    assert (final["best_epoch"], final["best_val/top5"]) == (3, 100.0)
    assert torch.load(folder / "best.pt", weights_only=True)["best"]["val/top5"] == 100.0


def test_every_checkpoint_damaged_is_an_error_not_a_fresh_start(tmp_path):
    folder, cfg, _ = finished_then_unfinished(tmp_path)
    for name in ("last.pt", "previous.pt"):
        (folder / name).write_bytes(b"not a checkpoint")
    with pytest.raises(DamagedCheckpoint, match=r"last.pt .*previous.pt"):
        fit.run(cfg, folder)
    assert epochs_of(folder) == [1, 2, 3]  # nothing was overwritten


def test_metrics_end_at_the_resumed_epoch_also_from_scratch(tmp_path):
    folder, cfg, _ = finished_then_unfinished(tmp_path, epochs=2)
    for name in ("last.pt", "previous.pt", "best.pt"):
        (folder / name).unlink()
    fit.run(cfg, folder)
    assert epochs_of(folder) == [1, 2]


def test_a_torn_last_metrics_line_is_dropped_with_a_warning(tmp_path):
    run_dir = RunDir(tmp_path / "run")
    run_dir.append_metrics({"epoch": 1})
    with open(run_dir.path / "metrics.jsonl", "a") as stream:
        stream.write('{"epoch": 2, "val')
    with pytest.warns(RuntimeWarning, match="torn last line"):
        assert run_dir.metrics() == [{"epoch": 1}]


def test_leftovers_of_a_killed_write_are_removed_on_the_next_start(tmp_path):
    folder = tmp_path / "run"
    RunDir(folder).write_json("run.json", {})
    leftover = folder / ".last.pt.k2j3h4.partial"
    leftover.write_bytes(b"half a checkpoint")
    RunDir(folder)
    assert not leftover.exists() and (folder / "run.json").is_file()


def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    finals = []
    for workers in (0, 2):
        cfg = compose_config(
            tiny_overrides(tmp_path, "dataset.loader=standard", f"dataset.num_workers={workers}")
        )
        finals.append(fit.run(cfg, tmp_path / f"workers{workers}"))
    assert {k: finals[0][k] for k in SCORES} == {k: finals[1][k] for k in SCORES}


@pytest.mark.slow
def test_joblib_sweep_with_dataloader_workers(tmp_path):
    overrides = tiny_overrides(
        tmp_path,
        "trainer.epochs=1",
        "dataset.loader=standard",
        "dataset.num_workers=2",
        "launcher=joblib",
        "seed=0,1",
    )
    run_checked(train_command(*overrides, multirun=True))
    finals = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("final.json")]
    assert len(finals) == 2 and all(f["status"] == "finished" for f in finals)


def test_a_resume_under_another_implementation_records_both(tmp_path, monkeypatch, capsys):
    from smooth_topk import cpu_kernel

    if not cpu_kernel.available():
        pytest.skip("needs the compiled CPU kernel, to resume without it")
    folder = tmp_path / "run"
    cfg = compose_config(tiny_overrides(tmp_path, "trainer.epochs=2", "loss=smooth_topk_svm"))
    fit.run(cfg, folder)
    (folder / "final.json").unlink()  # as if it had died after its last epoch
    monkeypatch.setenv("SMOOTH_TOPK_IMPL", "pytorch")
    assert fit.run(cfg, folder)["status"] == "finished"
    assert "loss_implementation cpu_kernel -> pytorch" in capsys.readouterr().out
    record = json.loads((folder / "run.json").read_text())
    ran = [segment["loss_implementation"] for segment in record["segments"]]
    assert ran == ["cpu_kernel", "pytorch"] and record["loss_implementation"] == "pytorch"


def test_an_interrupt_before_the_first_checkpoint_says_there_is_none(tmp_path, monkeypatch, capsys):
    from topk_repro.engine.interrupt import Interrupted

    def interrupted(*args, **kwargs):
        raise Interrupted("SIGTERM")

    monkeypatch.setattr(fit, "train_epoch", interrupted)
    cfg = compose_config(tiny_overrides(tmp_path))
    with pytest.raises(Interrupted):
        fit.run(cfg, tmp_path / "run")
    err = capsys.readouterr().err
    assert "no epoch was completed, so there is no checkpoint" in err and "epoch 0" not in err
    assert json.loads((tmp_path / "run" / "final.json").read_text())["status"] == "interrupted"


def test_the_cost_estimate_skips_a_torn_metrics_line_naming_the_file(tmp_path):
    folder = tmp_path / "runs" / "study" / "run-1"
    folder.mkdir(parents=True)
    metrics = folder / "metrics.jsonl"
    metrics.write_text('{"epoch": 1, "epoch_time_s": 120.0}\n{"epoch": 2, "epoch_ti')
    result = run_checked(
        script_command(
            "estimate_cost.py", "--runs", "2", "--epochs", "30", "--from-runs", str(folder.parent)
        )
    )
    assert "2.00 min/epoch (measured on existing runs) = about 2.0 GPU-hours" in result.stdout
    assert f"dropping the torn last line of {metrics}" in result.stderr


def test_a_resume_on_changed_noise_labels_is_refused_before_training(cifar_root, tmp_path):
    """The human-noise file replaced at the same path between two segments of a run."""
    clean = read_split(cifar_root, "train").fine
    noise_file = tmp_path / "CIFAR-100_human.pt"
    write_cifar100n(noise_file, clean, human_labels(clean, 0.4, seed=0))

    def config(root: Path):
        synthetic = ("dataset=", "dataset.synthetic.")
        overrides = [o for o in tiny_overrides(tmp_path) if not o.startswith(synthetic)]
        return compose_config(
            [
                *overrides,
                "dataset=cifar100",
                f"dataset.root={root}",
                "dataset.val_count=500",
                "dataset.noise.mode=human",
                f"dataset.noise.file={noise_file}",
            ]
        )

    folder = tmp_path / "run"
    fit.run(config(cifar_root), folder)
    (folder / "final.json").unlink()  # as if it had died after its last epoch
    metrics = (folder / "metrics.jsonl").read_text()
    write_cifar100n(noise_file, clean, human_labels(clean, 0.4, seed=1))
    with pytest.raises(DataMismatch, match=r"cannot resume(.|\n)*dataset.noise.human_md5: "):
        fit.run(config(cifar_root), folder)
    assert (folder / "metrics.jsonl").read_text() == metrics  # nothing was trained

    moved = tmp_path / "moved"  # the same files elsewhere: contents, not paths, are compared
    shutil.copytree(cifar_root, moved)
    write_cifar100n(noise_file, clean, human_labels(clean, 0.4, seed=0))
    assert fit.run(config(moved), folder)["status"] == "finished"


def test_a_preempted_submitit_job_is_recorded_as_preempted_then_resumes(
    tmp_path, monkeypatch, capsys
):
    """submitit's USR2 handler (checkpoint, requeue, sys.exit(-1)) simulated in this process."""
    import os
    import signal

    from topk_repro.engine.distributed import Processes

    requeued = []

    def submitit_like_handler(number, _frame):
        requeued.append(signal.Signals(number).name)
        sys.exit(-1)

    real_train_epoch = fit.train_epoch

    def pre_empted_in_epoch_2(*args, epoch, **kwargs):
        if epoch == 2 and not requeued:
            os.kill(os.getpid(), signal.SIGUSR2)  # handled at the next step
        return real_train_epoch(*args, epoch=epoch, **kwargs)

    monkeypatch.setattr(fit, "launch_description", lambda: Processes(launcher="submitit"))
    monkeypatch.setattr(fit, "train_epoch", pre_empted_in_epoch_2)
    previous = signal.signal(signal.SIGUSR2, submitit_like_handler)
    try:
        cfg = compose_config(tiny_overrides(tmp_path, "trainer.epochs=3"))
        with pytest.raises(SystemExit):
            fit.run(cfg, tmp_path / "run")
        final = json.loads((tmp_path / "run" / "final.json").read_text())
        assert requeued == ["SIGUSR2"]
        assert final["status"] == "preempted" and final["signal"] == "SIGUSR2"
        assert final["epochs_completed"] == 1 and final["preempted_at"]
        assert "pre-empted (SIGUSR2): requeued" in capsys.readouterr().err
        assert fit.run(cfg, tmp_path / "run")["status"] == "finished"  # the requeued segment
    finally:
        signal.signal(signal.SIGUSR2, previous)
    epochs = [m["epoch"] for m in read_metrics(tmp_path / "run" / "metrics.jsonl")]
    assert epochs == [1, 2, 3]
