"""The run record (run.json): what is needed to trust and rebuild a result."""

import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from smooth_topk import cpu_kernel
from smooth_topk.functional import implementation_in_use
from topk_repro.engine.identity import NOT_IDENTITY, identity_digest

PACKAGES = ("torch", "torchvision", "numpy", "hydra-core", "omegaconf", "wandb", "pandas")


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_state() -> dict:
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(dirty) if dirty is not None else None}


def versions() -> dict:
    found = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_record(cfg, identity: dict, data_record: dict, device: str) -> dict:
    return {
        "experiment": cfg.experiment_name,
        "run_name": cfg.run_name,
        "identity": identity,  # every setting that can change the results (engine/identity.py)
        "identity_digest": identity_digest(identity),
        "identity_excludes": list(NOT_IDENTITY),
        "git": git_state(),
        "versions": versions(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "device": device,
        # Which implementation computed the smooth top-k loss (asking may build the CPU kernel,
        # so other losses do not ask); the CPU kernel's file for CPU runs.
        "loss_implementation": (
            implementation_in_use(device, cfg.loss.k)
            if cfg.loss.name == "smooth_topk_svm"
            else None
        ),
        "loss_cpu_kernel": (
            cpu_kernel.status() if device == "cpu" and cfg.loss.name == "smooth_topk_svm" else None
        ),
        "seeds": {
            "train": cfg.seed,
            "noise": cfg.dataset.noise.seed if "noise" in cfg.dataset else None,
            "split": cfg.dataset.split_seed,
        },
        "dataset": data_record,
        "start_time": now(),
    }
