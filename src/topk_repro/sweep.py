"""Shared helper of the sweep entry points: build and launch one Hydra multirun.

Each study script (sweep_noise.py, sweep_sizes.py, sweep_tau.py) names its grid; this module
adds the common options (seeds, launcher, data folder, dry run) and passes any extra Hydra
overrides through.  Running a sweep again skips finished runs and resumes interrupted ones,
because every run's folder is named by the values that define it.
"""

import argparse
import itertools
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAUNCHERS = ("basic", "joblib", "submitit_local", "submitit_slurm")


def parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds, e.g. 0,1,2")
    parser.add_argument("--launcher", default="basic", choices=LAUNCHERS)
    parser.add_argument("--data", default="data", help="folder holding the data sets")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument(
        "--epoch-minutes",
        type=float,
        default=None,
        help="GPU minutes per epoch for the estimate (default: measured on existing runs)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the runs and the estimated GPU-hours, launch nothing",
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. trainer.amp=true")
    return parser


def grid_size(overrides: list[str]) -> int:
    """Number of runs in a multirun: the product of the comma-separated choices."""
    return math.prod(len(o.split("=", 1)[1].split(",")) for o in overrides if "=" in o)


def median_epoch_minutes(experiment_dir: Path) -> float | None:
    """Median epoch time (minutes) of the runs in a folder, from their metrics.jsonl."""
    times = [
        json.loads(line)["epoch_time_s"]
        for path in Path(experiment_dir).glob("*/metrics.jsonl")
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    return statistics.median(times) / 60 if times else None


def launch(experiment: str, grid: list[str], fixed: list[str], args, epochs: int) -> int:
    """Print the plan and its cost, then run `src/train.py -m` unless --dry-run."""
    overrides = [
        f"experiment={experiment}",
        *grid,
        f"seed={args.seeds}",
        f"launcher={args.launcher}",
        f"paths.data_dir={args.data}",
        f"paths.runs_dir={args.runs_dir}",
        *fixed,
        *args.overrides,
    ]
    runs = grid_size([o for o in overrides if "," in o.split("=", 1)[-1]])
    minutes = args.epoch_minutes or median_epoch_minutes(Path(args.runs_dir) / experiment)
    if minutes is None:
        print(
            f"{experiment}: {runs} runs x {epochs} epochs; GPU-hours unknown: no epoch time "
            "measured yet (run one epoch, or pass --epoch-minutes)"
        )
    else:
        source = "--epoch-minutes" if args.epoch_minutes else "measured on existing runs"
        print(
            f"{experiment}: {runs} runs x {epochs} epochs x {minutes:.2f} min/epoch ({source}) "
            f"= about {runs * epochs * minutes / 60:.1f} GPU-hours"
        )
    command = [sys.executable, str(ROOT / "src" / "train.py"), "-m", *overrides]
    print(" ".join(command))
    if args.dry_run:
        for values in itertools.product(*[o.split("=", 1)[1].split(",") for o in grid]):
            print("  ", dict(zip([o.split("=", 1)[0] for o in grid], values, strict=True)))
        return 0
    return subprocess.call(command, cwd=ROOT)
