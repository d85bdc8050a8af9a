"""How many runs a sweep has and its estimated GPU-hours (the sweeps' --dry-run, standalone).

python scripts/estimate_cost.py --runs 12 --epochs 300 --epoch-minutes 0.5
python scripts/estimate_cost.py --runs 12 --epochs 300 --from-runs runs/cifar100_noise
"""

import argparse
from pathlib import Path

from topk_repro.sweep import cost_text, median_epoch_minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--epoch-minutes", type=float)
    parser.add_argument("--from-runs", type=Path, help="measure the epoch time from run folders")
    args = parser.parse_args()
    if args.epoch_minutes is None and args.from_runs is None:
        raise SystemExit("give --epoch-minutes or --from-runs")
    minutes = args.epoch_minutes
    if args.from_runs:
        minutes = median_epoch_minutes(args.from_runs)
        if minutes is None:
            raise SystemExit(f"no metrics.jsonl under {args.from_runs}")
    print(cost_text(args.runs, args.epochs, minutes, given=args.from_runs is None))


if __name__ == "__main__":
    main()
