"""The types and ranges of the config's values, checked before any work.

Types are declared once, as dataclasses (OmegaConf structured configs): merging a group into its
schema rejects `trainer.epochs=1.5` or `loss.k=abc` and names the key.  Groups whose keys differ
by choice (dataset, model, loss) declare every key any of their choices may hold, each optional.
What types cannot say (ranges, choices) is checked after them, in `check_config`.
"""

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from topk_repro.data.label_noise import check_noise
from topk_repro.losses import LossData, build_criterion


@dataclass
class TrainerSettings:
    epochs: int
    batch_size: int
    eval_batch_size: int
    device: str
    amp: bool
    compile: bool
    deterministic: bool
    channels_last: bool
    force: bool
    progress: Any  # auto | true | false


@dataclass
class OptimSettings:
    name: str
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    milestones: list[int]
    gamma: float


@dataclass
class NoiseSettings:
    p: float
    mode: str
    seed: int
    on_val: bool


@dataclass
class SyntheticSettings:
    seed: int
    num_train: int
    num_test: int


@dataclass
class DatasetSettings:
    name: str
    num_classes: int
    split_seed: int
    loader: str
    num_workers: int
    root: str | None = None
    download: bool | None = None
    val_count: int | None = None
    train_size: int | None = None
    val_size: int | None = None
    noise: NoiseSettings | None = None
    synthetic: SyntheticSettings | None = None
    val_per_class: int | None = None
    train_per_class: int | None = None
    subset_seed: int | None = None
    image_size: int | None = None
    resize: int | None = None
    test_crops: int | None = None
    tag: str | None = None


@dataclass
class ModelSettings:
    name: str
    width: int | None = None
    depth: int | None = None
    growth_rate: int | None = None
    bottleneck_factor: int | None = None
    compression: float | None = None


@dataclass
class LossSettings:
    """Every hyper-parameter a loss of `LOSSES` may take (the loss's builder checks values)."""

    name: str
    tag: str | None = None
    k: int | None = None
    tau: float | None = None
    alpha: float | None = None
    label_smoothing: float | None = None
    q: float | None = None
    eps: float | None = None
    n_samples: int | None = None
    imbalanced: bool | None = None


GROUPS = {
    "trainer": TrainerSettings,
    "optim": OptimSettings,
    "dataset": DatasetSettings,
    "model": ModelSettings,
    "loss": LossSettings,
}


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


def check_types(cfg: DictConfig) -> None:
    """ValueError naming the key when a value has the wrong type or a key is unknown."""
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool):
        raise ValueError(f"seed must be an integer, got {cfg.seed!r}")
    for group, schema in GROUPS.items():
        values = OmegaConf.to_container(cfg[group], resolve=True)
        try:
            OmegaConf.merge(OmegaConf.structured(schema), values)
        except OmegaConfBaseException as error:
            key = getattr(error, "full_key", None) or ""
            known = ", ".join(f.name for f in fields(schema))
            detail = _first_line(error)
            if "not in" in detail:
                detail += f" (known keys: {known})"
            raise ValueError(f"{group}.{key}: {detail}" if key else f"{group}: {detail}") from None


def _at_least(key: str, value, lowest) -> None:
    if value < lowest:
        raise ValueError(f"{key} must be >= {lowest}, got {value}")


def check_config(cfg: DictConfig) -> None:
    """Fail before any work on values that cannot be right, naming the key."""
    check_types(cfg)
    trainer, optim, dataset = cfg.trainer, cfg.optim, cfg.dataset
    _at_least("trainer.epochs", trainer.epochs, 0)
    _at_least("trainer.batch_size", trainer.batch_size, 1)
    _at_least("trainer.eval_batch_size", trainer.eval_batch_size, 1)
    if trainer.progress not in ("auto", True, False):
        raise ValueError(f"trainer.progress must be auto, true or false, got {trainer.progress!r}")
    if not optim.lr > 0:
        raise ValueError(f"optim.lr must be > 0, got {optim.lr}")
    _at_least("optim.momentum", optim.momentum, 0)
    _at_least("optim.weight_decay", optim.weight_decay, 0)
    if not optim.gamma > 0:
        raise ValueError(f"optim.gamma must be > 0, got {optim.gamma}")
    for milestone in optim.milestones:
        _at_least("optim.milestones", milestone, 1)
    _at_least("dataset.num_workers", dataset.num_workers, 0)
    if dataset.loader not in ("standard", "device"):
        raise ValueError(f"dataset.loader must be 'standard' or 'device', got {dataset.loader!r}")
    if "noise" in dataset:
        check_noise(dataset.noise.p, dataset.noise.mode)
    # The loss's own checks (name, k, tau, ...); class counts are the data's, unknown yet.
    placeholder_counts = np.ones(dataset.num_classes, dtype=np.int64)
    build_criterion(cfg.loss, LossData(dataset.num_classes, placeholder_counts))
