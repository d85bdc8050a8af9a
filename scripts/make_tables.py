"""Rebuild every table, plot and claims check from run folders (or from W&B).

    python scripts/make_tables.py [--runs-dir runs] [--out-dir results] [--paper-dir results/paper]
    python scripts/make_tables.py --source wandb --entity E --project P --out-dir results
    python scripts/make_tables.py ... --wandb-project P [--wandb-entity E] [--wandb-mode offline]

Writes <out-dir>/runs.csv (one row per run) and, for each experiment with finished runs,
<out-dir>/<experiment>.{csv,md,tex,png} in the paper's layout, then prints which of the paper's
claims hold on our runs, which fail and which lack runs (also in <out-dir>/claims.md).
With --wandb-project, each experiment's tables and figures also go to W&B, to one summary run
of the experiment's group (results/wandb_export.py).
"""

import argparse
import sys
from pathlib import Path

from topk_repro.results.collect import collect_runs, collect_wandb
from topk_repro.results.report import write_report
from topk_repro.results.wandb_export import log_aggregates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--out-dir", type=Path, default=Path("results"))
    parser.add_argument("--paper-dir", type=Path, default=Path("results/paper"))
    parser.add_argument("--source", choices=["runs", "wandb"], default="runs")
    parser.add_argument("--entity")
    parser.add_argument("--project")
    parser.add_argument(
        "--wandb-project", help="also log each experiment's tables and figures to this project"
    )
    parser.add_argument("--wandb-entity")
    parser.add_argument("--wandb-mode", choices=["online", "offline"], default="online")
    args = parser.parse_args()
    if args.source == "wandb":
        if not (args.entity and args.project):
            parser.error("--source wandb needs --entity and --project")
        import wandb

        runs = collect_wandb(wandb.Api(), args.entity, args.project)
    else:
        runs = collect_runs(args.runs_dir)
    if runs.empty:
        print(f"no runs found under {args.runs_dir}")
        return 1

    def log(experiment: str) -> None:
        log_aggregates(
            args.out_dir, experiment, args.wandb_project, args.wandb_entity, args.wandb_mode
        )

    write_report(runs, args.out_dir, args.paper_dir, log if args.wandb_project else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
