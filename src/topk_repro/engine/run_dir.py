"""The run folder: every file a run writes, each written atomically (temporary file, rename).

Checkpoints: `last.pt` is the last completed epoch and `previous.pt` the one before it, so a
damaged `last.pt` (a full disk, a copy cut short) costs one epoch, never the run.  Temporary
files that a killed process left behind are removed when the folder is opened again.
"""

import json
import os
import pickle
import shutil
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from topk_repro.files import PARTIAL, write_atomically
from topk_repro.run_files import read_metrics

CHECKPOINT_KEYS = ("model", "optimizer", "epoch", "best", "train_time_s", "rng_cpu")


def describe_error(error: Exception) -> str:
    """A short reason a run-folder file failed to load: the error's type and first line (torch's
    unpickling errors run to a page and suggest weights_only=False, which would run code from
    the damaged file)."""
    if isinstance(error, pickle.UnpicklingError):
        return "damaged, or not a checkpoint"
    lines = str(error).strip().splitlines() or [""]
    return f"{type(error).__name__}: {lines[0]}"


class DamagedCheckpoint(Exception):
    """No checkpoint of the run folder can be read; the message names the files and why."""


class RunDir:
    """One run's folder: config.yaml (resolved), run.json, labels.npz, metrics.jsonl, final.json,
    last.pt, previous.pt, best.pt (and Hydra's .hydra/ when launched through src/train.py)."""

    def __init__(self, path: str | Path, writer: bool = True):
        """`writer`: this process writes the folder's files (rank 0 under DDP); it removes the
        temporary files a killed process left behind, which no other process may do while it
        writes."""
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        if writer:
            for leftover in self.path.glob(f".*{PARTIAL}"):
                leftover.unlink(missing_ok=True)

    def _atomic(self, name: str, write) -> None:
        write_atomically(self.path / name, write)

    def write_json(self, name: str, value: dict) -> None:
        text = json.dumps(value, indent=2, sort_keys=True, default=str).encode()
        self._atomic(name, lambda stream: stream.write(text))

    def write_text(self, name: str, text: str) -> None:
        self._atomic(name, lambda stream: stream.write(text.encode()))

    def read_json(self, name: str) -> dict | None:
        path = self.path / name
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError as error:
            raise ValueError(f"{path} is not valid JSON ({error})") from None

    def save_labels(self, labels: dict[str, np.ndarray]) -> None:
        self._atomic("labels.npz", lambda stream: np.savez(stream, **labels))

    def save_checkpoint(self, name: str, state: dict) -> None:
        self._atomic(name, lambda stream: torch.save(state, stream))

    def load_checkpoint(self, name: str, map_location="cpu") -> dict | None:
        """The checkpoint `name` of this folder, None when it does not exist; DamagedCheckpoint,
        naming the file, when it cannot be read or is not one this project wrote."""
        path = self.path / name
        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as error:  # torch raises many kinds for a damaged file
            raise DamagedCheckpoint(f"{path} cannot be read ({describe_error(error)})") from None
        if not isinstance(state, dict) or not {"model", "epoch"} <= set(state):
            raise DamagedCheckpoint(
                f"{path} is not a checkpoint of this project: it holds no 'model' and 'epoch' "
                "(a bare state dict?)"
            )
        return state

    def save_last(self, state: dict) -> None:
        """Write last.pt; the last.pt it replaces becomes previous.pt."""
        last = self.path / "last.pt"
        if last.is_file():
            os.replace(last, self.path / "previous.pt")
        self.save_checkpoint("last.pt", state)

    def load_last(self, map_location="cpu") -> dict | None:
        """The newest readable checkpoint of last.pt and previous.pt, None when neither exists.
        A damaged one is named in a warning; when every existing one is damaged this raises
        DamagedCheckpoint rather than let the run start over silently."""
        problems = []
        for name in ("last.pt", "previous.pt"):
            path = self.path / name
            if not path.is_file():
                continue
            try:
                checkpoint = torch.load(path, map_location=map_location, weights_only=True)
                missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
                if missing:
                    raise ValueError(f"missing {', '.join(missing)}")
            except Exception as error:  # torch raises many kinds for a damaged file
                problems.append(f"{path} ({describe_error(error)})")
                warnings.warn(f"cannot read {problems[-1]}", RuntimeWarning, stacklevel=2)
                continue
            if problems:
                print(f"resuming from {name}: {problems[0]} is damaged")
            return checkpoint
        if problems:
            raise DamagedCheckpoint(
                f"cannot resume: every checkpoint is damaged: {'; '.join(problems)}. Move "
                f"{self.path} away (or delete it) to train from scratch"
            )
        return None

    def metrics(self) -> list[dict]:
        """metrics.jsonl's rows (`read_metrics`)."""
        return read_metrics(self.path / "metrics.jsonl")

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
        """final.json's status; None when there is none, or it is damaged (with a warning:
        the checkpoints then decide where the run resumes)."""
        try:
            final = self.read_json("final.json")
        except ValueError as error:
            warnings.warn(f"ignoring {error}", RuntimeWarning, stacklevel=2)
            return None
        return final.get("status") if final else None
