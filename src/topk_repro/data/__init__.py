"""Data sets of the framework; `build_data` is the one place where they are registered."""

from collections.abc import Callable

from topk_repro.data.bundle import DataBundle
from topk_repro.data.cifar import build_cifar100, build_synthetic
from topk_repro.data.imagenet import build_imagenet

BUILDERS: dict[str, Callable[..., DataBundle]] = {
    "cifar100": build_cifar100,
    "synthetic": build_synthetic,
    "imagenet": build_imagenet,
}


def build_data(cfg) -> DataBundle:
    """Build the data set named by `cfg.name` (the `dataset` config group)."""
    if cfg.name not in BUILDERS:
        raise ValueError(f"dataset.name must be one of {sorted(BUILDERS)}, got {cfg.name!r}")
    return BUILDERS[cfg.name](cfg)
