"""The training command: `python src/train.py ...` or `topk-train ...` (Hydra overrides).

Hydra composes the config from the repository's `configs/`; the engine builds data, model and
loss, trains, and records everything in the run folder (see README, "The run folder").
"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from topk_repro.config.naming import register_resolvers
from topk_repro.engine.console import kept_in
from topk_repro.engine.distributed import launch_description
from topk_repro.engine.fit import run
from topk_repro.engine.folder_lock import FolderBusy
from topk_repro.engine.interrupt import Interrupted, exit_code_of
from topk_repro.engine.loop import NonFiniteLoss

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# Here, not in main(): Hydra's launchers (joblib, submitit) run `_train` in processes that
# import this module without calling main(), and resolve the run folder's name there.
register_resolvers(lambda: launch_description().world_size)
SEARCHABLE_METRICS = ("best_val/top1", "best_val/top5")


@hydra.main(version_base="1.3", config_path=str(CONFIGS), config_name="train")
def _train(cfg: DictConfig) -> float | None:
    """Train one run; returns `study.optimized_metric` of its final.json when a search preset
    names one (a sweeper maximises it), else None."""
    searching = OmegaConf.select(cfg, "study.optimized_metric", default=None) is not None
    if searching:
        check_optimized_metric(cfg)
    hydra_cfg = HydraConfig.get()
    job_number = hydra_cfg.job.num if hydra_cfg.mode.name == "MULTIRUN" else None
    folder = Path(hydra_cfg.runtime.output_dir)
    # The run's console output also goes to its folder's train.log (rank 0's, under DDP).
    with kept_in(folder / f"{hydra_cfg.job.name}.log", enabled=launch_description().is_main):
        try:
            final = run(cfg, folder, job_number=job_number)
        except Interrupted as stopped:  # final.json says so; the engine printed how to resume
            raise SystemExit(exit_code_of(stopped)) from None
        except FolderBusy as busy:  # another live process trains in this folder
            raise SystemExit(f"error: {busy}") from None
        except NonFiniteLoss:  # final.json names the epoch and step
            if searching:  # a diverged trial: the sweeper records it as failed and goes on
                raise
            raise SystemExit(1) from None
    return optimized_value(cfg, final)


def check_optimized_metric(cfg: DictConfig) -> None:
    """Stop the whole search, before its first trial trains, when `study.optimized_metric` is
    not a validation metric of final.json (a failed trial would not stop it)."""
    metric = cfg.study.optimized_metric
    if metric not in SEARCHABLE_METRICS:
        raise SystemExit(
            f"study.optimized_metric={metric}: a search maximises one of "
            f"{', '.join(SEARCHABLE_METRICS)} (validation metrics of final.json; never a test one)"
        )


class SearchCheck(Callback):
    """The search presets' Hydra callback: their metric and budget are checked when the
    multirun starts, before the first trial trains (a trial's own error would only fail that
    trial)."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        check_optimized_metric(config)
        trials = OmegaConf.select(config, "hydra.sweeper.n_trials", default=None)
        if trials is not None and trials < 1:
            raise SystemExit(f"hydra.sweeper.n_trials={trials}: a search needs 1 trial or more")
        self.trials, self.ended, self.completed = trials, 0, 0

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs) -> None:
        """After the last trial, stop with what happened when none finished (the sweeper would
        end in its own error: no trial to call the best)."""
        self.ended += 1
        self.completed += job_return.status == JobStatus.COMPLETED
        if self.trials is not None and self.ended >= self.trials and self.completed == 0:
            raise SystemExit(
                f"the search ended with no finished trial: all {self.trials} trials failed or "
                f"diverged; each trial's final.json under {config.hydra.sweep.dir} says why "
                "(a narrower search space or a smaller optim.lr may help)"
            )


def optimized_value(cfg: DictConfig, final: dict | None) -> float | None:
    """The value a sweeper optimises: final.json's `study.optimized_metric` (a validation
    metric: a search never reads the test set)."""
    metric = OmegaConf.select(cfg, "study.optimized_metric", default=None)
    if metric is None or final is None:
        return None
    if metric.startswith(("test/", "last/test/")):
        raise ValueError(
            f"study.optimized_metric={metric}: a search may not optimise a test metric"
        )
    if metric not in final:
        raise ValueError(
            f"study.optimized_metric={metric} is not in final.json ({', '.join(final)})"
        )
    return float(final[metric])


def main() -> None:
    """Entry point of `topk-train`; it needs the checkout's configs (an editable install)."""
    if not (CONFIGS / "train.yaml").is_file():
        raise SystemExit(
            f"configs not found at {CONFIGS}: topk-train runs from a repository checkout "
            "installed with `make setup` (pip install -e .)"
        )
    _train()
