"""One row per run: flat config keys, the run record's identity, and final.json."""

import json
from pathlib import Path

import pandas as pd
import yaml


def flatten(value: dict, prefix: str = "") -> dict:
    flat = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            flat.update(flatten(item, f"{name}."))
        else:
            flat[name] = item
    return flat


def run_row(folder: Path) -> dict | None:
    """The row of one run folder, or None when it has no resolved config (not a run)."""
    config_path = folder / "config.yaml"
    if not config_path.is_file():
        return None
    config = flatten(yaml.safe_load(config_path.read_text()))
    config = {k: v for k, v in config.items() if not k.startswith(("hydra.", "per_loss."))}
    record = (
        json.loads((folder / "run.json").read_text()) if (folder / "run.json").is_file() else {}
    )
    final = (
        json.loads((folder / "final.json").read_text()) if (folder / "final.json").is_file() else {}
    )
    dataset = record.get("dataset", {})
    return {
        **config,
        "run_dir": str(folder),
        "official_data": dataset.get("official"),
        "git_commit": record.get("git", {}).get("commit"),
        "noise_realised": dataset.get("noise", {}).get("realised_fraction"),
        "status": final.get("status", "not started"),
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
        config = flatten({k: v for k, v in dict(run.config).items() if not k.startswith("_")})
        summary = {k: v for k, v in dict(run.summary).items() if not k.startswith("_")}
        rows.append(
            {
                **config,
                "run_dir": f"wandb:{run.path}",
                "official_data": None,
                "status": "finished",
                **summary,
            }
        )
    return pd.DataFrame(rows)
