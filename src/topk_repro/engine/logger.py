"""Weights & Biases mirror of the run folder (`logger=wandb`); a no-op for `logger=none`."""

from pathlib import Path
from typing import Protocol

from omegaconf import OmegaConf

from topk_repro.engine.distributed import Processes
from topk_repro.engine.identity import identity_digest, run_identity


class Logger(Protocol):
    """What the engine asks of a logger: per-epoch metrics, a summary, an end."""

    run_id: str | None

    def log(self, metrics: dict, epoch: int) -> None: ...

    def summary(self, values: dict) -> None: ...

    def finish(self, exit_code: int = 0) -> None: ...


class NullLogger:
    run_id = None

    def log(self, metrics: dict, epoch: int) -> None:
        pass

    def summary(self, values: dict) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass


class WandbLogger:
    """One W&B run per run folder, its files inside the folder; resumes with the saved id."""

    def __init__(self, cfg, run_dir: Path, run_id: str | None, processes: int = 1):
        import wandb

        self._wandb = wandb
        self.run = wandb.init(
            project=cfg.logger.project,
            entity=cfg.logger.entity,
            mode=cfg.logger.mode,
            dir=str(run_dir),
            group=cfg.experiment_name,
            job_type=cfg.loss.name,
            name=f"{cfg.run_name}-{identity_digest(run_identity(cfg, processes))}",  # as folders
            tags=list(cfg.logger.get("tags", [])),
            config=OmegaConf.to_container(cfg, resolve=True),
            id=run_id,
            resume="allow",
            reinit="finish_previous",
        )
        self.run.define_metric("epoch")
        self.run.define_metric("*", step_metric="epoch")
        self.run_id = self.run.id

    def log(self, metrics: dict, epoch: int) -> None:
        self.run.log({**metrics, "epoch": epoch})

    def summary(self, values: dict) -> None:
        self.run.summary.update(values)

    def finish(self, exit_code: int = 0) -> None:
        self.run.finish(exit_code=exit_code)


def build_logger(cfg, run_dir: Path, run_id: str | None, processes: Processes) -> Logger:
    """W&B for rank 0 of a run with `logger=wandb`, else nothing."""
    if cfg.logger.name == "none" or not processes.is_main:
        return NullLogger()
    if cfg.logger.name == "wandb":
        return WandbLogger(cfg, run_dir, run_id, processes.world_size)
    raise ValueError(f"logger.name must be 'none' or 'wandb', got {cfg.logger.name!r}")
