"""Upload the offline W&B runs of a whole sweep: `wandb sync` on every run folder below a path.

    python scripts/sync_wandb.py runs/cifar100_noise [--dry-run]     (make sync-wandb RUNS=...)

Offline runs live in each run folder (<run>/wandb/offline-run-*), one per segment of a resumed
run, so `wandb sync runs/<experiment>` alone finds nothing.  Segments are synced oldest first, so
a resumed run's history arrives in epoch order.  --dry-run lists them and uploads nothing.
"""

import argparse
import subprocess
import sys
from pathlib import Path


def offline_runs(root: Path) -> list[Path]:
    """Every offline W&B run below `root`, by run folder then time (names start with it)."""
    return sorted(root.rglob("offline-run-*"), key=lambda p: (str(p.parent.parent), p.name))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, nargs="?", default=Path("runs"))
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    found = [p for p in offline_runs(args.root) if p.is_dir()]
    if not found:
        print(f"no offline W&B runs below {args.root} (runs with logger=wandb logger.mode=offline)")
        return 1
    print(f"{len(found)} offline W&B runs below {args.root}")
    if args.dry_run:
        print("\n".join(f"  {p}" for p in found))
        return 0
    wandb = [sys.executable, "-m", "wandb", "sync"]
    failed = [p for p in found if subprocess.call([*wandb, str(p)]) != 0]
    if failed:
        print(f"{len(failed)} did not sync: {', '.join(map(str, failed))}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
