"""Data sets of the framework; `BUILDERS` is the one place where they are registered.

A data set is one module with a builder `(cfg) -> DataBundle` (data/bundle.py), the schema of
its config (a dataclass extending `DatasetSettings`) and its check, plus one config in
`configs/dataset/` whose `name` is its key here.
"""

from topk_repro.config.components import (
    Component,
    DatasetSettings,
    Registry,
    check_dataset_base,
)
from topk_repro.data import imagenet
from topk_repro.data.bundle import DataBundle
from topk_repro.data.cifar import (
    CifarSettings,
    SyntheticSettings,
    build_cifar100,
    build_synthetic,
    check_cifar,
    check_synthetic,
)

BUILDERS = Registry(
    "dataset",
    DatasetSettings,
    {
        "cifar100": Component(build_cifar100, CifarSettings, check_cifar),
        "synthetic": Component(build_synthetic, SyntheticSettings, check_synthetic),
        "imagenet": Component(imagenet.build_imagenet, imagenet.ImageNetSettings, imagenet.check),
    },
    check_base=check_dataset_base,
)


def build_data(cfg) -> DataBundle:
    """Build the data set named by `cfg.name` (the `dataset` config group), after its checks
    (a builder runs on checked values, whoever calls it)."""
    BUILDERS.check(cfg, cfg.num_classes)
    return BUILDERS.look_up(cfg.name).build(cfg)
