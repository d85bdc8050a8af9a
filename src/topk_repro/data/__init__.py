"""Data sets of the framework; `BUILDERS` is the one place where they are registered.

A data set is one module with a builder `(cfg) -> DataBundle` and the schema of its config (a
dataclass), plus one config in `configs/dataset/` whose `name` is its key here.
"""

from topk_repro.components import Component, look_up
from topk_repro.data.bundle import DataBundle
from topk_repro.data.cifar import CifarSettings, SyntheticSettings, build_cifar100, build_synthetic
from topk_repro.data.imagenet import ImageNetSettings, build_imagenet

BUILDERS: dict[str, Component] = {
    "cifar100": Component(build_cifar100, CifarSettings),
    "synthetic": Component(build_synthetic, SyntheticSettings),
    "imagenet": Component(build_imagenet, ImageNetSettings),
}


def build_data(cfg) -> DataBundle:
    """Build the data set named by `cfg.name` (the `dataset` config group)."""
    return look_up(BUILDERS, "dataset", cfg.name).build(cfg)
