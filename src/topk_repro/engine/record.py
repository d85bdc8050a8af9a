"""The run record (run.json): what is needed to trust and rebuild a result, written with the
resolved config (config.yaml) and the labels (labels.npz) when a run starts or resumes."""

import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from smooth_topk import cpu_kernel
from topk_repro.config.identity import (
    NOT_IDENTITY,
    flatten,
    identity_digest,
    outside_identity_keys,
)
from topk_repro.config.settings import per_process_batch
from topk_repro.data.bundle import DataBundle
from topk_repro.engine.distributed import Processes
from topk_repro.engine.run_dir import RunDir
from topk_repro.losses import implementation_of

# Where the data lives may change (a moved folder, evaluation elsewhere); what it is may not.
NOT_DATA_IDENTITY = ("root",)
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


# Read when this process imports the engine, i.e. when it loads the code it runs: a long-lived
# worker (joblib's, submitit's) would otherwise record a HEAD that moved after it started.
GIT_AT_IMPORT = git_state()


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


def run_segment(criterion: torch.nn.Module, device: str) -> dict:
    """What one stretch of a run (its start, or a resume) ran on: the time, the device, the CPU
    threads (engine/threads.py) and, for a loss with several implementations, the one that
    computed it (losses.implementation_of) and, for the CPU kernel, its file."""
    implementation = implementation_of(criterion, device)
    return {
        "start_time": now(),
        "device": device,
        "cpu_threads": torch.get_num_threads(),
        "loss_implementation": implementation,
        "loss_cpu_kernel": cpu_kernel.status() if implementation == "cpu_kernel" else None,
    }


SEGMENT_KEYS = ("device", "cpu_threads", "loss_implementation", "loss_cpu_kernel")


def add_resume(record: dict, segment: dict) -> list[str]:
    """Record a resume in run.json's record: the segment joins `segments`, the top-level
    device and implementation become the segment's (what ran last), and the returned lines
    name what changed since the previous segment."""
    previous = (record.get("segments") or [{key: record.get(key) for key in SEGMENT_KEYS}])[-1]
    changes = [
        f"{key} {previous.get(key)} -> {segment[key]}"
        for key in SEGMENT_KEYS
        if previous.get(key) != segment[key]
    ]
    record.setdefault("segments", []).append(segment)
    record.setdefault("resumed", []).append(segment["start_time"])
    record.update({key: segment[key] for key in SEGMENT_KEYS})
    return changes


def run_record(cfg, identity: dict, data_record: dict, data_seeds: dict, segment: dict) -> dict:
    """run.json of a new run whose first segment is `segment` (see `run_segment`);
    `data_seeds` are the seeds that drew its data (the data bundle's)."""
    return {
        "experiment": cfg.experiment_name,
        "run_name": cfg.run_name,
        "identity": identity,  # every setting that can change the results (config/identity.py)
        "identity_digest": identity_digest(identity),
        "identity_excludes": [*NOT_IDENTITY, *sorted(outside_identity_keys())],
        "git": GIT_AT_IMPORT,
        "versions": versions(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        **{key: segment[key] for key in SEGMENT_KEYS},  # of the latest segment
        "segments": [segment],  # the start and every resume: what each ran on
        "seeds": {"train": cfg.seed, **data_seeds},
        "dataset": data_record,
        "start_time": segment["start_time"],
    }


def write_record(
    run_dir: RunDir,
    cfg: DictConfig,
    identity: dict,
    data: DataBundle,
    model: torch.nn.Module,
    criterion: torch.nn.Module,
    device: torch.device,
    processes: Processes,
    resuming: bool,
) -> dict:
    """Write run.json (new, or with this resume's segment added), labels.npz and config.yaml
    (the typed config); returns run.json's content."""
    parameters = sum(p.numel() for p in model.parameters())
    record = run_dir.read_json("run.json")
    segment = run_segment(criterion, str(device))
    if not resuming or record is None:
        record = run_record(cfg, identity, data.record, data.seeds, segment)
        record["processes"] = {
            "world_size": processes.world_size,
            "launcher": processes.launcher,
            "batch_per_process": per_process_batch(cfg.trainer.batch_size, processes.world_size),
        }
        record["parameters"] = parameters
        run_dir.save_labels(data.labels)
    else:
        changes = add_resume(record, segment)
        if changes:
            print(
                f"resuming under another set-up ({'; '.join(changes)}): the results may differ "
                "in the last digits from an uninterrupted run; run.json records both"
            )
    run_dir.write_json("run.json", record)
    run_dir.write_text("config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    print(
        f"run folder {run_dir.path}\n{data.summary()}\n"
        f"model {cfg.model.name}: {parameters / 1e6:.2f} M parameters; loss {cfg.loss.tag}"
    )
    return record


class DataMismatch(ValueError):
    """The data rebuilt for a run differs from what its run.json recorded; the message lists
    the keys."""


def data_differences(recorded: dict, rebuilt: dict) -> list[str]:
    """'dataset.key: recorded -> rebuilt' for each value of the data record that differs (the
    files' md5s, the noise file's md5, the realised noise, ...), where the data lives aside."""
    old, new = flatten(recorded), flatten(rebuilt)
    return [
        f"dataset.{key}: {old.get(key, '<absent>')} -> {new.get(key, '<absent>')}"
        for key in sorted(set(old) | set(new))
        if key.split(".")[0] not in NOT_DATA_IDENTITY and old.get(key) != new.get(key)
    ]
