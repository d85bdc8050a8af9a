"""What a run folder's files hold, for the engine that writes them and the tables, sweeps and
tests that read them (no torch needed to read a run)."""

import json
import warnings
from pathlib import Path

# final.json's names of the best epoch's values -> their names in W&B's summary, which holds
# them once, under best/* (set at each improvement and again on resume).
BEST_IN_FINAL = {
    "best_epoch": "best/epoch",
    "best_val/top1": "best/val/top1",
    "best_val/top5": "best/val/top5",
}


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics.jsonl (none when it does not exist).  A torn last line (a process
    killed while appending, by an older version or a copy cut short) is dropped with a warning
    naming the file; a damaged line before the last is an error naming the file and line.
    Every reader of run folders goes through here."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except ValueError as error:
            if number < len(lines):
                raise ValueError(f"{path}, line {number}, is not valid JSON ({error})") from None
            warnings.warn(f"dropping the torn last line of {path}", RuntimeWarning, stacklevel=2)
    return rows
