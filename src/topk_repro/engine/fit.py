"""Train one (dataset, model, loss) with the paper's protocol and record everything in its folder.

Per epoch: train on the (noisy) training labels, evaluate on validation, append a row to
metrics.jsonl, keep `best.pt` (best validation top-5, as the paper selects) and `last.pt`.  At
the end the best-top-5 checkpoint is evaluated on test (the last epoch's model too).

A run interrupted by SIGINT/SIGTERM keeps the last completed epoch in `last.pt`; running the same
command again resumes from there, and because the data order and augmentation of every epoch
derive from (seed, epoch) alone, the resumed run ends with the same metrics as an uninterrupted
one.  A finished run is not retrained unless `trainer.force=true` (then into a fresh folder).
"""

import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from topk_repro.config.identity import check_folder_identity, run_identity
from topk_repro.config.settings import check_config, per_process_batch
from topk_repro.data import build_data
from topk_repro.data.bundle import DataBundle
from topk_repro.data.order import epoch_seed
from topk_repro.engine import folder_lock
from topk_repro.engine.assembly import (
    Loaders,
    Tester,
    build_loaders,
    build_loss,
    test_metrics,
    tester,
    wrap_for_training,
)
from topk_repro.engine.console import closing_line, epoch_line, show_progress
from topk_repro.engine.device import configure_torch, pick_device
from topk_repro.engine.diagnostics import memorisation
from topk_repro.engine.distributed import (
    Processes,
    barrier,
    join_processes,
    launch_description,
    share_buffers_of_rank_zero,
)
from topk_repro.engine.interrupt import Interrupted, StopFlag, exit_code_of, stop_flag
from topk_repro.engine.logger import Logger, build_logger
from topk_repro.engine.loop import BatchSettings, NonFiniteLoss, evaluate, train_epoch
from topk_repro.engine.record import now, write_record
from topk_repro.engine.resume import adopt_later_best, check_resumed_data
from topk_repro.engine.run_dir import RunDir
from topk_repro.engine.state import TrainState
from topk_repro.engine.threads import set_cpu_threads
from topk_repro.models import build_model
from topk_repro.optimizers import build_optimizer, learning_rate
from topk_repro.run_files import BEST_IN_FINAL


@dataclass
class Training:
    """Everything one run's epochs and test need, built once by `_prepare`."""

    cfg: DictConfig
    run_dir: RunDir
    processes: Processes
    data: DataBundle
    model: torch.nn.Module
    training_model: torch.nn.Module  # the model, wrapped for DDP and torch.compile when asked
    criterion: torch.nn.Module  # the loss, built once (the tester measures with it too)
    optimizer: torch.optim.Optimizer
    loaders: Loaders
    tester: Tester  # the crop transform and what test metrics need
    state: TrainState
    logger: Logger
    batches: BatchSettings
    progress: bool


def run(cfg: DictConfig, run_path: Path, job_number: int | None = None) -> dict | None:
    """Train (or resume) the run whose folder is `run_path`; returns final.json's content.

    The config is used as its schemas type it (config/settings.py).  A run stopped by a signal
    raises `Interrupted`, one whose loss became non-finite `NonFiniteLoss`, each after
    final.json says so (cli.py turns them into exit codes)."""
    cfg = check_config(cfg)
    processes = launch_description()
    per_process_batch(cfg.trainer.batch_size, processes.world_size)  # fails before joining
    wants_cuda = cfg.trainer.device != "cpu" and torch.cuda.is_available()
    join_processes(processes, "cuda" if wants_cuda else "cpu")
    device = pick_device(
        cfg.trainer.device,
        local_rank=processes.local_rank,
        job_number=job_number if processes.world_size == 1 else None,
    )
    Path(run_path).mkdir(parents=True, exist_ok=True)
    # One process trains in a folder at a time (rank 0 holds it for a multi-process run).
    with folder_lock.held(Path(run_path)) if processes.is_main else nullcontext():
        run_dir = RunDir(run_path, writer=processes.is_main)
        identity = run_identity(cfg, processes.world_size)
        check_folder_identity(run_dir.path, run_dir.read_json("run.json"), identity)
        if run_dir.status == "finished":
            if not cfg.trainer.force:
                print(
                    f"{run_dir.path} is already finished; nothing to do "
                    "(trainer.force=true retrains it into a fresh folder)"
                )
                return run_dir.read_json("final.json")
            run_dir = run_dir.fresh_copy()

        configure_torch(cfg.trainer.deterministic)
        set_cpu_threads(cfg.trainer.cpu_threads, processes.world_size)
        training = _prepare(cfg, identity, run_dir, device, processes)
        if training is None:
            print("dry run (trainer.epochs=0): data, model and loss built; nothing trained")
            return None
        return _train_and_test(training)


def _prepare(
    cfg: DictConfig, identity: dict, run_dir: RunDir, device, processes: Processes
) -> Training | None:
    """Build data, model, loss and optimizer, record the run, restore its last checkpoint, and
    wrap the model; None for a dry run (trainer.epochs=0), which stops after the record."""
    torch.manual_seed(cfg.seed)
    data = build_data(cfg.dataset)
    model = build_model(cfg.model, data.num_classes).to(device)
    if cfg.trainer.channels_last:
        model = model.to(memory_format=torch.channels_last)
    criterion, crop_transform = build_loss(cfg, data)
    optimizer = build_optimizer(cfg.optim, model.parameters())
    checkpoint = run_dir.load_last(map_location=device)
    if checkpoint is not None:
        check_resumed_data(run_dir, data)
    if data.check_before_training is not None and cfg.trainer.epochs > 0:
        data.check_before_training(cfg.dataset.num_workers)
    record = None
    if processes.is_main:
        resuming = checkpoint is not None
        record = write_record(
            run_dir, cfg, identity, data, model, criterion, device, processes, resuming
        )
    if cfg.trainer.epochs == 0:
        return None

    state = TrainState()
    if checkpoint is not None:
        state = TrainState.restore(checkpoint, model, optimizer)
        if processes.is_main:
            print(f"resuming from epoch {state.epoch}")
        adopt_later_best(run_dir, state)
    if processes.is_main:
        run_dir.keep_metrics_until(state.epoch)

    batches = BatchSettings(device, cfg.trainer.amp, cfg.trainer.channels_last)
    logger = build_logger(cfg, run_dir.path, state.wandb_id, processes, record)
    state.wandb_id = logger.run_id
    if state.epoch:  # a resumed run's summary holds its best epoch from the start
        logger.summary({f"best/{key}": value for key, value in state.best.items()})
    return Training(
        cfg=cfg,
        run_dir=run_dir,
        processes=processes,
        data=data,
        model=model,
        training_model=wrap_for_training(model, cfg, device, processes),
        criterion=criterion,
        optimizer=optimizer,
        loaders=build_loaders(cfg, data, device, processes),
        tester=tester(cfg, data, criterion, crop_transform, batches),
        state=state,
        logger=logger,
        batches=batches,
        progress=processes.is_main and show_progress(cfg.trainer.progress),
    )


def _train_and_test(training: Training) -> dict:
    """The epochs, then the test of the last and the best model; final.json records how it
    ended (finished, interrupted, preempted, failed) whatever happens, then the exception goes
    on."""
    exit_code = 0
    stop = stop_flag(training.processes.launcher)
    try:
        with stop:
            _train_epochs(training, stop)
            results = _test(training, stop)
        final = _save_final(training, "finished", end_time=now(), **results)
        _summarise(training, final)
        return final
    except Interrupted as stopped:
        exit_code = exit_code_of(stopped)
        _save_final(training, "interrupted", reason=f"{stopped} received", end_time=now())
        done = training.state.epoch
        where = (
            f"last.pt holds epoch {done}; run the same command again to resume"
            if done
            else "no epoch was completed, so there is no checkpoint; the same command starts "
            "the run again"
        )
        _say(training, f"interrupted by {stopped}: {where}")
        raise
    except NonFiniteLoss as failure:
        exit_code = 1
        _save_final(training, "failed", reason=str(failure), end_time=now())
        _say(training, f"failed: {failure}; last.pt keeps the last good epoch")
        raise
    except SystemExit as leaving:
        exit_code = 1
        if stop.passed_on_name is None:
            _save_final(training, "failed", reason=f"SystemExit: {leaving}", end_time=now())
            raise
        # The launcher's handler requeued the job and ends this segment: not a failure.
        _save_final(
            training,
            "preempted",
            reason=f"{stop.passed_on_name} received: the launcher requeued the job, which "
            f"resumes from last.pt (epoch {training.state.epoch})",
            signal=stop.passed_on_name,
            preempted_at=stop.passed_on_at,
            end_time=now(),
        )
        _say(training, f"pre-empted ({stop.passed_on_name}): requeued, resumes from last.pt")
        raise
    except BaseException as error:
        exit_code = 1
        _save_final(training, "failed", reason=f"{type(error).__name__}: {error}", end_time=now())
        raise
    finally:
        training.logger.finish(exit_code)


def _say(training: Training, message: str) -> None:
    """A message about the whole run, on standard error, from rank 0 only."""
    if training.processes.is_main:
        print(message, file=sys.stderr, flush=True)


def _train_epochs(training: Training, stop: StopFlag) -> None:
    """Epochs state.epoch + 1 .. trainer.epochs, each recorded and checkpointed when done."""
    cfg, state, main = training.cfg, training.state, training.processes.is_main
    train_loader, val_loader = training.loaders.train, training.loaders.val
    for epoch in range(state.epoch + 1, cfg.trainer.epochs + 1):
        lr = learning_rate(epoch, cfg.optim)
        for group in training.optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(epoch_seed(cfg.seed, epoch))
        train_loader.set_epoch(epoch)
        started = time.perf_counter()
        row = train_epoch(
            training.training_model,
            train_loader,
            training.criterion,
            training.optimizer,
            epoch=epoch,
            batches=training.batches,
            stop=stop,
            progress=training.progress,
        )
        seconds = time.perf_counter() - started
        share_buffers_of_rank_zero(training.model)  # every rank evaluates the saved model
        row.update(
            evaluate(
                training.model,
                val_loader,
                training.criterion,
                prefix="val",
                batches=training.batches,
                stop=stop,
            )
        )
        state.train_time_s += time.perf_counter() - started
        if training.loaders.probe is not None:
            probed = time.perf_counter()
            row.update(memorisation(training.model, training.loaders.probe, training.batches, stop))
            row["memo_time_s"] = time.perf_counter() - probed
        state.epoch = epoch
        row.update(
            epoch=epoch,
            lr=lr,
            epoch_time_s=seconds,
            images_per_s=len(training.data.train) / seconds,
        )
        if state.improves(row):
            state.best = {"epoch": epoch, "val/top1": row["val/top1"], "val/top5": row["val/top5"]}
            training.logger.summary({f"best/{key}": value for key, value in state.best.items()})
            if main:
                checkpoint = {"model": training.model.state_dict(), "best": state.best}
                training.run_dir.save_checkpoint("best.pt", {**checkpoint, "epoch": epoch})
        if main:
            training.run_dir.append_metrics(row)
            training.run_dir.save_last(state.checkpoint(training.model, training.optimizer))
            print(epoch_line(epoch, cfg.trainer.epochs, row), flush=True)
        training.logger.log(row, epoch)
        barrier()


def _test(training: Training, stop: StopFlag) -> dict:
    """Test accuracy of the last epoch's model, then of the best-validation-top-5 one."""

    last = test_metrics(training.model, training.loaders.test, training.tester, stop)
    best_state = training.run_dir.load_checkpoint("best.pt", map_location=training.batches.device)
    if best_state is not None:
        training.model.load_state_dict(best_state["model"])
    best = test_metrics(training.model, training.loaders.test, training.tester, stop, diagnose=True)
    return {
        **best,
        "last/test/top1": last["test/top1"],
        "last/test/top5": last["test/top5"],
    }


def _save_final(training: Training, status: str, **extra) -> dict:
    """final.json: how the run ended, its progress, the best validation epoch and `extra`."""
    state = training.state
    final = {
        "status": status,
        "epochs_completed": state.epoch,
        "best_epoch": state.best["epoch"],
        "train_time_s": state.train_time_s,
        "best_val/top1": state.best["val/top1"],
        "best_val/top5": state.best["val/top5"],
        **extra,
    }
    if training.processes.is_main:
        training.run_dir.write_json("final.json", final)
    # W&B's summary keeps each metric's last epoch (val/*, train/*, lr alike); the best epoch's
    # values are under best/* (set at each improvement), and final.json's others beside them.
    training.logger.summary({k: v for k, v in final.items() if k not in BEST_IN_FINAL})
    return final


def _summarise(training: Training, final: dict) -> None:
    """The closing line, from rank 0."""
    if training.processes.is_main:
        print(closing_line(training.state.best, final))
