"""Recompute every test metric of a saved run from its checkpoint, and compare with final.json.

    python scripts/evaluate.py RUN_DIR [--checkpoint best|last] [--device cpu] [--data-root DIR]
                               [--allow-other-data] [--out FILE.json]

The model is rebuilt from the run folder's config.yaml and the data from the same settings;
the data must match the identity run.json recorded (else the differences are listed and
nothing is computed, unless --allow-other-data).  Prints each metric beside final.json's value.
Exit code 0; 2 when a file of the run folder is damaged or foreign, or the data differs (the
message names the file or the keys); 3 when a recomputed metric differs from the recorded one:
counts and accuracies must be equal, other floats (the loss) within a relative
RELATIVE_TOLERANCE, since a run of several processes summed them in another order.
"""

import argparse
import json
import math
import sys
from pathlib import Path

from topk_repro.engine.run_dir import DamagedCheckpoint, RunDir
from topk_repro.evaluation import CHECKPOINTS, evaluate_run, load_run, recorded_metrics

RELATIVE_TOLERANCE = 1e-5  # for the loss; accuracies come from counts and must be equal


def same(a, b, exact: bool) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, exact) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b if exact else math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE)
    return a == b


def shown(value) -> str:
    if isinstance(value, list):
        return f"[{len(value)} values]"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def out_refused(out: Path) -> str | None:
    """Why the metrics may not be written to `out`, or None: its folder must exist, and the
    file must be new and outside every run folder (a run's record is the engine's alone)."""
    if not out.parent.is_dir():
        return f"the folder {out.parent} does not exist"
    if (out.parent / "run.json").is_file():
        return f"{out.parent} is a run folder, whose files only training writes; choose another"
    if out.exists():
        return "the file exists; evaluate.py writes only a new file"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--checkpoint", choices=list(CHECKPOINTS), default="best")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-root", help="where the data set lives now (dataset.root)")
    parser.add_argument("--allow-other-data", action="store_true")
    parser.add_argument("--out", type=Path, help="write the recomputed metrics as JSON")
    args = parser.parse_args()
    if args.out is not None:
        refused = out_refused(args.out)
        if refused:
            parser.error(f"--out {args.out}: {refused}")
    try:
        return evaluate(args)
    except (ValueError, OSError, DamagedCheckpoint) as error:  # each names the file or key
        print(f"evaluate.py: error: {error}", file=sys.stderr)
        return 2


def evaluate(args: argparse.Namespace) -> int:
    run = load_run(
        args.run_dir, args.checkpoint, args.device, args.data_root, args.allow_other_data
    )
    for difference in run.data_differences:
        print(f"WARNING data differs from the run's record: {difference}", file=sys.stderr)
    metrics = evaluate_run(run)
    final = RunDir(args.run_dir, writer=False).read_json("final.json") or {}
    recorded = recorded_metrics(final, args.checkpoint)
    print(f"{args.run_dir} ({args.checkpoint} checkpoint, epoch {run.epoch})")
    print(f"  (accuracies compared exactly, the loss within a relative {RELATIVE_TOLERANCE:g})")
    mismatched = []
    for key, value in metrics.items():
        if key not in recorded:
            print(f"  {key:28s} {shown(value):>14s}   (not in final.json)")
            continue
        match = same(value, recorded[key], exact=not key.endswith("loss"))
        mismatched += [] if match else [key]
        mark = "=" if match else "DIFFERS from"
        print(f"  {key:28s} {shown(value):>14s}   {mark} final.json {shown(recorded[key])}")
    if args.out:
        args.out.write_text(json.dumps({"checkpoint": args.checkpoint, **metrics}, indent=1))
    if mismatched:
        print(f"{len(mismatched)} metrics differ from final.json: {', '.join(mismatched)}")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
