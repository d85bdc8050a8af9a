"""One row per run: flat config keys, the run's identity, final.json and the last epoch's
memorisation measures.

Each row carries `run_id` (the digest of the run's identity, config/identity.py) and `config_id`
(the same without the seed): tables average over the distinct seeds of one `config_id`, and
count a repeated run (a `trainer.force` copy, a re-run) of one seed once.
"""

import json
import warnings
from pathlib import Path

import pandas as pd
import yaml

from topk_repro.config.identity import flatten, identity_digest, run_identity, without_seed
from topk_repro.run_files import BEST_IN_FINAL, read_metrics


def _read(path: Path, parse) -> dict | None:
    """A file's content, {} when it does not exist, None (with a warning naming it) when it
    cannot be read."""
    if not path.is_file():
        return {}
    try:
        value = parse(path.read_text())
    except (OSError, ValueError, yaml.YAMLError) as error:
        warnings.warn(f"skipping {path.parent}: {path.name} is unreadable ({error})", stacklevel=3)
        return None
    if not isinstance(value, dict):
        warnings.warn(f"skipping {path.parent}: {path.name} holds no mapping", stacklevel=3)
        return None
    return value


def identity_columns(identity: dict) -> dict:
    return {
        "run_id": identity_digest(identity),
        "config_id": identity_digest(without_seed(identity)),
    }


def last_memorisation(folder: Path) -> dict:
    """The memorisation measures (`memo/*`) of the run's last epoch in metrics.jsonl, as a W&B
    summary holds them: the claims check reads the regime from them.  {} when there are none;
    a damaged file is named in a warning."""
    try:
        rows = read_metrics(folder / "metrics.jsonl")
    except (OSError, ValueError) as error:
        warnings.warn(f"{folder}: no regime measures ({error})", stacklevel=3)
        return {}
    if not rows:
        return {}
    return {k: v for k, v in rows[-1].items() if k.startswith("memo/")}


def run_row(folder: Path) -> dict | None:
    """The row of one run folder, or None when it has no readable resolved config (not a run)
    or an unreadable record or final.json (skipped with a warning)."""
    if not (folder / "config.yaml").is_file():
        return None
    config = _read(folder / "config.yaml", yaml.safe_load)
    record = _read(folder / "run.json", json.loads)
    final = _read(folder / "final.json", json.loads)
    if config is None or record is None or final is None:
        return None
    identity = record.get("identity") or run_identity(config)
    flat = flatten(config)
    flat = {k: v for k, v in flat.items() if not k.startswith(("hydra.", "per_loss."))}
    dataset = record.get("dataset", {})
    return {
        **flat,
        **identity_columns(identity),
        "run_dir": str(folder),
        "official_data": dataset.get("official"),
        "git_commit": record.get("git", {}).get("commit"),
        "noise_realised": dataset.get("noise", {}).get("realised_fraction"),
        "status": final.get("status", "not started"),
        **last_memorisation(folder),
        **{k: v for k, v in final.items() if k != "status"},
    }


def collect_runs(runs_dir: Path) -> pd.DataFrame:
    """Every run folder below `runs_dir` (found by its run.json)."""
    rows = [
        row
        for path in sorted(Path(runs_dir).rglob("run.json"))
        if (row := run_row(path.parent)) is not None
    ]
    return pd.DataFrame(rows)


def collect_wandb(api, entity: str, project: str) -> pd.DataFrame:
    """Finished W&B runs as the same rows: nested config keys flattened, summary as final.json."""
    rows = []
    for run in api.runs(f"{entity}/{project}", filters={"state": "finished"}):
        nested = {k: v for k, v in dict(run.config).items() if not k.startswith("_")}
        summary = {k: v for k, v in dict(run.summary).items() if not k.startswith("_")}
        # the best epoch's values as final.json names them (the summary holds them as best/*)
        summary.update(
            {name: summary[key] for name, key in BEST_IN_FINAL.items() if key in summary}
        )
        rows.append(
            {
                **flatten(nested),
                **identity_columns(run_identity(nested)),
                "run_dir": f"wandb:{run.path}",
                "official_data": None,
                "status": "finished",
                **summary,
            }
        )
    return pd.DataFrame(rows)
