"""Helpers for the framework's tests: small data in the real on-disk formats, and composed Hydra
configs (imported by name; the fixtures are in conftest.py)."""

import contextlib
import io
import json
import os
import runpy
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

from topk_repro.config.naming import register_resolvers
from topk_repro.data.cifar_format import CifarSplit, write_meta, write_split
from topk_repro.engine.distributed import launch_description

ROOT = Path(__file__).resolve().parents[1]  # the checkout
CONFIGS = ROOT / "configs"
TRAIN = str(ROOT / "src" / "train.py")

# The configs name run folders with them (cli.main does the same).
register_resolvers(lambda: launch_description().world_size)


def train_command(*overrides: str, multirun: bool = False) -> list[str]:
    """The command line of `python src/train.py [-m] <overrides>`."""
    return [sys.executable, TRAIN, *(["-m"] if multirun else []), *overrides]


def script_command(name: str, *arguments: str) -> list[str]:
    """The command line of `python scripts/<name> <arguments>`."""
    return [sys.executable, str(ROOT / "scripts" / name), *arguments]


def run_checked(command: list[str], **options) -> subprocess.CompletedProcess:
    """Run a command from the checkout root, capturing text; a non-zero exit fails the test
    with the ends of both outputs."""
    options.setdefault("cwd", ROOT)
    result = subprocess.run(command, capture_output=True, text=True, **options)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def realistic_coarse_map(seed: int = 7) -> np.ndarray:
    """Coarse class of each of 100 fine classes: 5 per coarse class, not in blocks of 5
    (as in CIFAR-100, whose fine labels are numbered alphabetically)."""
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(20), 5))


def write_cifar_fixture(root: Path, num_train: int = 2000, num_test: int = 500) -> np.ndarray:
    rng = np.random.default_rng(0)
    coarse_of_fine = realistic_coarse_map()
    for name, count in (("train", num_train), ("test", num_test)):
        fine = rng.integers(0, 100, count)
        images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
        write_split(root, name, CifarSplit(images, fine, coarse_of_fine[fine]))
    write_meta(root, [f"fine{i}" for i in range(100)], [f"coarse{i}" for i in range(20)])
    return coarse_of_fine


def folder_contents(folder: Path) -> dict[str, bytes]:
    """Each file's bytes by name: to show that a folder a user owns was left untouched."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def write_cifar100n(path: Path, clean: np.ndarray, noisy: np.ndarray, **extra) -> None:
    """A file in CIFAR-100N's format: torch.save of a dict of label arrays."""
    torch.save({"clean_label": clean, "noisy_label": noisy, **extra}, path)


def human_labels(clean: np.ndarray, rate: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = clean.copy()
    changed = rng.random(len(clean)) < rate
    noisy[changed] = (clean[changed] + rng.integers(1, 100, changed.sum())) % 100
    return noisy


def write_imagefolder_fixture(
    root: Path, classes: int = 3, train_per_class: int = 30, val_per_class: int = 4
) -> None:
    rng = np.random.default_rng(0)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            folder = root / split / f"n{c:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"img_{i:04d}.png")


def compose_config(
    overrides: list[str], config_dir: Path = CONFIGS, return_hydra_config: bool = False
):
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return compose(
            config_name="train", overrides=overrides, return_hydra_config=return_hydra_config
        )


def dataset_config(group: str, **values):
    """The `dataset=<group>` config without DataLoader workers, with dotted keys set (struct
    mode off, for fixtures)."""
    cfg = compose_config([f"dataset={group}"]).dataset
    OmegaConf.set_struct(cfg, False)
    cfg.num_workers = 0
    for key, value in values.items():
        OmegaConf.update(cfg, key, value)
    return cfg


def cifar_config(root, **values):
    """`dataset=cifar100` reading the fixture files under `root`, with a 500-image val split."""
    return dataset_config("cifar100", **{"val_count": 500, **values, "root": str(root)})


def tiny_overrides(tmp_path: Path, *extra: str) -> list[str]:
    """A CPU run that takes seconds: a small synthetic set and a narrow CNN."""
    return [
        f"paths.data_dir={tmp_path / 'data'}",
        f"paths.runs_dir={tmp_path / 'runs'}",
        "dataset=synthetic",
        "dataset.synthetic.num_train=1000",
        "dataset.synthetic.num_test=200",
        "dataset.train_size=400",
        "dataset.val_count=300",
        "dataset.val_size=200",
        "dataset.num_workers=0",
        "dataset.loader=device",
        "model=cifar_small",
        "model.width=8",
        "trainer.epochs=2",
        "trainer.batch_size=50",
        "trainer.device=cpu",
        "trainer.progress=false",
        "optim.lr=0.05",
        *extra,
    ]


def _script_here(name: str, arguments: tuple[str, ...]) -> tuple[int, str, str]:
    """scripts/<name> run in this process, as from the checkout root: (exit code, standard
    output, standard error)."""
    path = ROOT / "scripts" / name
    out, err, argv, cwd, code = io.StringIO(), io.StringIO(), sys.argv, Path.cwd(), 0
    sys.argv = [str(path), *arguments]
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(str(path), run_name="__main__")
    except SystemExit as stop:
        code = 0 if stop.code is None else stop.code if isinstance(stop.code, int) else 1
    finally:
        sys.argv = argv
        os.chdir(cwd)
    return code, out.getvalue(), err.getvalue()


def run_script_here(name: str, *arguments: str) -> str:
    """Run scripts/<name> in this process as `python scripts/<name> <arguments>` from the
    checkout root runs it (without starting an interpreter and importing torch and pandas
    again): its standard output. A non-zero exit fails the test with both outputs."""
    code, out, err = _script_here(name, arguments)
    assert code == 0, f"{name} exited with {code}:\n{out[-3000:]}\n{err[-3000:]}"
    return out


def script_failure_here(name: str, *arguments: str) -> tuple[int, str]:
    """scripts/<name> run in this process as `run_script_here` runs it: its exit code and
    standard error, for a run that is meant to fail."""
    code, _, err = _script_here(name, arguments)
    return code, err


def tiny_sweep_overrides(tmp_path: Path) -> list[str]:
    """The tiny sweep (conftest.py's `tiny_sweep`): CE and L_{5,1} at noise 0 and 0.4, logged
    offline to W&B, into `tmp_path/runs/mini/`."""
    return [
        "loss=ce,smooth_topk_svm",
        "dataset.noise.p=0.0,0.4",
        *tiny_overrides(tmp_path, "logger=wandb", "logger.mode=offline", "experiment_name=mini"),
    ]


def read_wandb_log(path: Path) -> list:
    """Records of a .wandb file (a LevelDB-style log of W&B protobuf records)."""
    from wandb.proto import wandb_internal_pb2

    data, position, block, pending, records = path.read_bytes(), 7, 32768, b"", []
    while position + 7 <= len(data):
        if block - position % block < 7:
            position += block - position % block
            continue
        length = int.from_bytes(data[position + 4 : position + 6], "little")
        kind = data[position + 6]
        chunk = data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending + chunk)
            records.append(record)
            pending = b""
        elif kind in (2, 3):
            pending += chunk
    return records


def finished_wandb_log(path: Path, timeout_s: float = 30.0) -> list:
    """The records of a W&B offline file once it ends with its `exit` record: W&B's service can
    still be writing the file after `finish()` has returned (seen on a loaded machine)."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = read_wandb_log(path)
        ended = records and records[-1].WhichOneof("record_type") == "exit"
        if ended or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def offline_history(folder: Path) -> tuple[list[dict], dict, list]:
    """The history rows (each with its `_step`), the merged summary and the run records of the
    W&B offline files under a run folder, oldest file first (a resumed run writes one per
    segment)."""
    history, summary, runs = [], {}, []
    for log in sorted(Path(folder).glob("wandb/offline-run-*/*.wandb")):
        for record in finished_wandb_log(log):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                runs.append(record.run)
            elif kind == "history":
                history.append(
                    {
                        item.key or "/".join(item.nested_key): json.loads(item.value_json)
                        for item in record.history.item
                    }
                )
            elif kind == "summary":
                for item in record.summary.update:
                    summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return history, summary, runs
