"""What Hydra cannot say about a study before it runs: its runs and their GPU cost.

A study's grid lives in its preset (`hydra.sweeper.params` in configs/experiment/<study>.yaml),
and `python src/train.py -m experiment=<study> [key=a,b ...]` runs it, command-line sweeps
replacing the preset's for the same key (as Hydra's sweeper does).  `plan` reads the same file
and the same overrides and lists the runs, touching no file; the cost is estimated from an
epoch time given, or measured on the study's run folders.  Running a sweep again skips finished
runs and resumes interrupted ones, because every run's folder is named by its identity.
"""

import itertools
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from topk_repro.run_files import read_metrics

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


@dataclass
class Plan:
    """A study's runs (each a {key: value} of its swept settings), their epochs and where their
    folders go, and the command that runs them."""

    experiment: str
    runs: list[dict]
    epochs: int
    runs_dir: Path
    command: list[str]

    def cost_line(self, epoch_minutes: float | None) -> str:
        """'<study>: N runs x E epochs x M min/epoch = about H GPU-hours' (or why unknown)."""
        measured = median_epoch_minutes(self.runs_dir / self.experiment)
        return f"{self.experiment}: " + cost_text(
            len(self.runs), self.epochs, epoch_minutes or measured, epoch_minutes is not None
        )


def cost_text(runs: int, epochs: int, minutes: float | None, given: bool) -> str:
    """'N runs x E epochs x M min/epoch (given|measured on existing runs) = about H GPU-hours',
    or why the cost is unknown (no epoch time)."""
    head = f"{runs} runs x {epochs} epochs"
    if minutes is None:
        return (
            f"{head}; GPU-hours unknown: no epoch time measured yet (run one epoch, or pass "
            "--epoch-minutes)"
        )
    source = "given" if given else "measured on existing runs"
    hours = runs * epochs * minutes / 60
    return f"{head} x {minutes:.2f} min/epoch ({source}) = about {hours:.1f} GPU-hours"


def _grid(sweeps: list[str]) -> dict[str, list[str]]:
    """{key: its values} of Hydra sweep overrides (`key=a,b`, `key=range(0,1,0.2)`, ...)."""
    grid = {}
    for override in OverridesParser.create().parse_overrides(sweeps):
        if override.is_sweep_override():
            grid[override.key_or_group] = list(override.sweep_string_iterator())
        else:
            grid[override.key_or_group] = [override.get_value_element_as_str()]
    return grid


def plan(overrides: list[str]) -> Plan:
    """The runs `python src/train.py -m <overrides>` would launch (an `experiment=` among them
    brings its preset's grid)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="train", overrides=fixed, return_hydra_config=True)
    params = cfg.hydra.sweeper.get("params") or {}
    grid = _grid([f"{key}={value}" for key, value in params.items()])
    grid.update(_grid(sweeps))  # the command line's sweeps replace the preset's
    runs = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    command = [sys.executable, str(ROOT / "src" / "train.py"), "-m", *overrides]
    return Plan(
        cfg.experiment_name, runs, int(cfg.trainer.epochs), Path(cfg.paths.runs_dir), command
    )


def median_epoch_minutes(experiment_dir: Path) -> float | None:
    """Median epoch time (minutes) of the runs in a folder, from their metrics.jsonl."""
    times = [
        row["epoch_time_s"]
        for path in sorted(Path(experiment_dir).glob("*/metrics.jsonl"))
        for row in read_metrics(path)
        if "epoch_time_s" in row
    ]
    return statistics.median(times) / 60 if times else None
