"""A run's parts built from its typed config: the loss, the loaders (test loader included), the
model wrapped for training, and the test metrics.  Training (engine/fit.py) and the evaluation
of a saved run (evaluation.py) build them here, so both measure with the same parts.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import DictConfig

from topk_repro.config.settings import per_process_batch
from topk_repro.data.bundle import DataBundle
from topk_repro.engine.diagnostics import TopkDiagnostics, probe_indices
from topk_repro.engine.distributed import Processes
from topk_repro.engine.interrupt import StopFlag
from topk_repro.engine.loaders import build_loader
from topk_repro.engine.loop import BatchSettings, evaluate
from topk_repro.losses import LossData, build_criterion


@dataclass(frozen=True)
class Loaders:
    train: object
    val: object
    test: object
    probe: object | None = None  # the memorisation probe's images (diagnostics)


@dataclass(frozen=True)
class Tester:
    """What measuring a model on the test set needs besides the model and the loader."""

    criterion: torch.nn.Module
    crop_transform: Callable[[torch.Tensor], torch.Tensor]
    batches: BatchSettings
    num_classes: int
    groups: object  # the noise groups of the top-5 group share (data/bundle.py)
    topk_max: int


def build_loss(cfg: DictConfig, data: DataBundle) -> tuple:
    """The run's criterion and crop transform; a loss may use the training labels' class
    counts (the noisy labels it trains on)."""
    counts = np.bincount(data.train_labels, minlength=data.num_classes)
    return build_criterion(cfg.loss, LossData(data.num_classes, counts))


def build_loaders(
    cfg: DictConfig, data: DataBundle, device: torch.device, processes: Processes
) -> Loaders:
    """Train, validation, test and memorisation-probe loaders, each process taking its share."""
    common = {
        "num_workers": cfg.dataset.num_workers,
        "device": device,
        "seed": cfg.seed,
        "rank": processes.rank,
        "world_size": processes.world_size,
    }
    kind = cfg.dataset.loader
    batch = per_process_batch(cfg.trainer.batch_size, processes.world_size)
    eval_batch = max(1, cfg.trainer.eval_batch_size // processes.world_size)
    probe = None
    probed = cfg.diagnostics.memorisation_images
    if data.memorisation_probe is not None and probed > 0:
        indices = probe_indices(len(data.train), probed, cfg.diagnostics.memorisation_seed)
        probe = build_loader(
            data.memorisation_probe(indices),
            train=False,
            batch_size=eval_batch,
            loader=kind,
            **common,
        )
    return Loaders(
        train=build_loader(data.train, train=True, batch_size=batch, loader=kind, **common),
        val=build_loader(data.val, train=False, batch_size=eval_batch, loader=kind, **common),
        test=build_test_loader(cfg, data, device, processes.rank, processes.world_size),
        probe=probe,
    )


def build_test_loader(
    cfg: DictConfig, data: DataBundle, device, rank: int = 0, world_size: int = 1
):
    """The test loader (ten-crop test items need the standard path)."""
    kind = "standard" if data.test_crops > 1 else cfg.dataset.loader
    return build_loader(
        data.test,
        train=False,
        batch_size=max(1, cfg.trainer.eval_batch_size // world_size // data.test_crops),
        loader=kind,
        num_workers=cfg.dataset.num_workers,
        device=device,
        seed=cfg.seed,
        rank=rank,
        world_size=world_size,
    )


def wrap_for_training(
    model: torch.nn.Module, cfg: DictConfig, device: torch.device, processes: Processes
) -> torch.nn.Module:
    """The model as the training steps call it: DistributedDataParallel across processes,
    torch.compile when asked."""
    wrapped = model
    if processes.world_size > 1:
        ids = [device.index] if device.type == "cuda" else None
        wrapped = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if cfg.trainer.compile:
        wrapped = torch.compile(wrapped)
    return wrapped


def tester(cfg: DictConfig, data: DataBundle, criterion, crop_transform, batches) -> Tester:
    return Tester(
        criterion, crop_transform, batches, data.num_classes, data.groups, cfg.diagnostics.topk_max
    )


def test_metrics(
    model: torch.nn.Module,
    loader,
    setup: Tester,
    stop: StopFlag | None = None,
    diagnose: bool = False,
) -> dict:
    """The test metrics of `model`; with `diagnose`, the diagnostics' too (top-k curve, group
    share, per-class accuracy)."""
    diagnostics = None
    if diagnose:
        diagnostics = TopkDiagnostics(
            setup.num_classes, setup.topk_max, setup.groups, setup.batches.device
        )
    return evaluate(
        model,
        loader,
        setup.criterion,
        prefix="test",
        batches=setup.batches,
        stop=stop,
        crop_transform=setup.crop_transform,
        diagnostics=diagnostics,
    )
