"""Weights & Biases mirror of the run folder (`logger=wandb`); a no-op for `logger=none`."""

import contextlib
import io
from pathlib import Path
from typing import Protocol

from omegaconf import OmegaConf

from topk_repro.engine.distributed import Processes


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
    """One W&B run per run folder, its files inside the folder; resumes with the saved id.

    The history's step is the epoch, so a resumed run (a new offline file, or the same run
    online) continues at the next epoch instead of restarting at step 0.  W&B's own console
    output is silenced unless `logger.quiet=false`; one line says where the run logs."""

    def __init__(self, cfg, run_dir: Path, run_id: str | None, record: dict):
        import wandb

        self.run_dir = Path(run_dir)
        self.quiet = quiet = cfg.logger.quiet
        self.run = wandb.init(
            project=cfg.logger.project,
            entity=cfg.logger.entity,
            mode=cfg.logger.mode,
            dir=str(run_dir),
            group=cfg.experiment_name,
            job_type=cfg.loss.name,
            name=f"{cfg.run_name}-{record.get('identity_digest')}",  # as run folders
            tags=default_tags(cfg) + list(cfg.logger.get("tags", [])),
            config={**OmegaConf.to_container(cfg, resolve=True), "run": run_facts(record)},
            id=run_id,
            resume="allow",
            reinit="finish_previous",
            settings=wandb.Settings(silent=quiet, console="off" if quiet else "auto"),
        )
        self.run.define_metric("epoch")
        self.run.define_metric("*", step_metric="epoch")
        self.run_id = self.run.id
        where = (
            f"offline in {run_dir / 'wandb'} (upload: make sync-wandb RUNS={run_dir})"
            if cfg.logger.mode == "offline"
            else f"to {self.run.url or cfg.logger.mode}"
        )
        print(f"W&B run {self.run.name} ({self.run.id}) logs {where}", flush=True)

    def log(self, metrics: dict, epoch: int) -> None:
        self.run.log({**metrics, "epoch": epoch}, step=epoch)

    def summary(self, values: dict) -> None:
        self.run.summary.update(values)

    def finish(self, exit_code: int = 0) -> None:
        """Attach run.json and final.json to the W&B run (its files), then end it."""
        # W&B says on stderr that it linked the files, whatever `silent` says: kept quiet too.
        with contextlib.redirect_stderr(io.StringIO()) if self.quiet else contextlib.nullcontext():
            for name in ("run.json", "final.json"):
                if (self.run_dir / name).is_file():
                    path, base = str(self.run_dir / name), str(self.run_dir)
                    self.run.save(path, base_path=base, policy="now")
        self.run.finish(exit_code=exit_code)


def default_tags(cfg) -> list[str]:
    """Tags every run gets, to filter a dashboard: loss, experiment, noise rule and level."""
    tags = [f"loss:{cfg.loss.name}", f"experiment:{cfg.experiment_name}"]
    if "noise" in cfg.dataset:
        tags.append(f"noise:{cfg.dataset.noise.mode}-p{cfg.dataset.noise.p:g}")
    return tags


def run_facts(record: dict) -> dict:
    """What run.json knows that the config does not: the identity digest, the data's identity
    (official or synthetic) and the process count (the `run` section of the W&B config)."""
    data = record.get("dataset", {})
    return {
        "identity_digest": record.get("identity_digest"),
        "data": {"name": data.get("name"), "official": data.get("official")},
        "world_size": record.get("processes", {}).get("world_size", 1),
    }


def build_logger(
    cfg, run_dir: Path, run_id: str | None, processes: Processes, record: dict | None
) -> Logger:
    """W&B for rank 0 of a run with `logger=wandb` (`record`: its run.json, which rank 0
    holds), else nothing."""
    if cfg.logger.name == "none" or not processes.is_main:
        return NullLogger()
    if cfg.logger.name == "wandb":
        return WandbLogger(cfg, run_dir, run_id, record or {})
    raise ValueError(f"logger.name must be 'none' or 'wandb', got {cfg.logger.name!r}")
