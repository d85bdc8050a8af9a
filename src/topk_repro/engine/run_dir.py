"""The run folder: every file a run writes, each written atomically (temporary file, rename)."""

import json
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np
import torch


class RunDir:
    """One run's folder: config.yaml (resolved), run.json, labels.npz, metrics.jsonl, final.json,
    last.pt, best.pt (and Hydra's .hydra/ when launched through src/train.py)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def _atomic(self, name: str, write) -> None:
        handle, temporary = tempfile.mkstemp(dir=self.path, prefix=f".{name}.")
        try:
            os.fchmod(handle, 0o644)
            with os.fdopen(handle, "wb") as stream:
                write(stream)
            os.replace(temporary, self.path / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def write_json(self, name: str, value: dict) -> None:
        text = json.dumps(value, indent=2, sort_keys=True, default=str).encode()
        self._atomic(name, lambda stream: stream.write(text))

    def write_text(self, name: str, text: str) -> None:
        self._atomic(name, lambda stream: stream.write(text.encode()))

    def read_json(self, name: str) -> dict | None:
        path = self.path / name
        return json.loads(path.read_text()) if path.is_file() else None

    def save_labels(self, labels: dict[str, np.ndarray]) -> None:
        self._atomic("labels.npz", lambda stream: np.savez(stream, **labels))

    def save_checkpoint(self, name: str, state: dict) -> None:
        self._atomic(name, lambda stream: torch.save(state, stream))

    def load_checkpoint(self, name: str, map_location="cpu") -> dict | None:
        path = self.path / name
        if not path.is_file():
            return None
        return torch.load(path, map_location=map_location, weights_only=True)

    def metrics(self) -> list[dict]:
        path = self.path / "metrics.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def _write_metrics(self, rows: list[dict]) -> None:
        """Rewrite metrics.jsonl whole, atomically: a crash never leaves a torn line."""
        text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode()
        self._atomic("metrics.jsonl", lambda stream: stream.write(text))

    def keep_metrics_until(self, epoch: int) -> None:
        """Drop rows after `epoch` (written by an epoch that a resume will run again)."""
        self._write_metrics([row for row in self.metrics() if row["epoch"] <= epoch])

    def append_metrics(self, row: dict) -> None:
        self._write_metrics([*self.metrics(), row])

    def fresh_copy(self) -> "RunDir":
        """A new sibling folder `<name>-retrain-<time>` holding a copy of Hydra's .hydra/."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        fresh = RunDir(self.path.with_name(f"{self.path.name}-retrain-{stamp}"))
        if (self.path / ".hydra").is_dir():
            shutil.copytree(self.path / ".hydra", fresh.path / ".hydra", dirs_exist_ok=True)
        return fresh

    @property
    def status(self) -> str | None:
        final = self.read_json("final.json")
        return final["status"] if final else None
