"""CIFAR-100 with label noise (`dataset=cifar100`) and its synthetic stand-in (`dataset=synthetic`).

Protocol (the paper's): noise drawn once on the 50,000 official training images from its own
seed, then a 45,000 / 5,000 train/validation split with seed 1234; validation labels clean
unless `noise.on_val`; the official 10,000 test images with clean labels.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from topk_repro.config.components import (
    DatasetSettings,
    at_least,
    outside_identity,
)
from topk_repro.data import synthetic
from topk_repro.data.arrays import ArrayDataset
from topk_repro.data.augment import normalize
from topk_repro.data.bundle import DataBundle
from topk_repro.data.cifar_format import (
    check_class_count,
    ensure_files,
    files_identity,
    read_split,
)
from topk_repro.data.human_noise import read_human_labels
from topk_repro.data.label_noise import (
    NoiseSettings,
    apply_label_noise,
    check_noise,
    coarse_of_fine,
    noise_groups,
)
from topk_repro.data.splits import train_val_split


@dataclass
class CifarSettings(DatasetSettings):
    """`dataset=cifar100`: the keys of configs/dataset/cifar100.yaml beyond every data set's."""

    download: bool = outside_identity()
    val_count: int
    train_size: int | None
    val_size: int | None
    noise: NoiseSettings


@dataclass
class GeneratorSettings:
    seed: int
    num_train: int
    num_test: int
    pixel_noise: float | None  # the set's difficulty; None: the generator's default (70)


@dataclass
class SyntheticSettings(CifarSettings):
    """`dataset=synthetic`: CIFAR-100's keys and the generator's."""

    synthetic: GeneratorSettings


def check_cifar(cfg, num_classes: int) -> None:
    at_least("dataset.val_count", cfg.val_count, 1)
    check_noise(cfg.noise.p, cfg.noise.mode, cfg.noise.file)


def check_synthetic(cfg, num_classes: int) -> None:
    check_cifar(cfg, num_classes)
    at_least("dataset.synthetic.num_train", cfg.synthetic.num_train, 2)
    at_least("dataset.synthetic.num_test", cfg.synthetic.num_test, 1)
    if cfg.synthetic.pixel_noise is not None:
        at_least("dataset.synthetic.pixel_noise", cfg.synthetic.pixel_noise, 0)


def build_from_files(cfg, root: Path, identity: dict) -> DataBundle:
    """The bundle from CIFAR-format files under root (`identity`: what run.json records of
    the files)."""
    check_class_count(root, cfg.num_classes)
    train_file = read_split(root, "train", cfg.num_classes)
    test_file = read_split(root, "test", cfg.num_classes)
    clean = train_file.fine
    noise_record = {}
    if cfg.noise.mode == "human":
        human = read_human_labels(cfg.noise.file, clean, cfg.num_classes)
        noisy = human["labels"]
        noise_record = {
            "human_file": human["file"],
            "human_md5": human["md5"],
            "human_realised_fraction_all": human["realised_fraction"],
        }
    else:
        noisy = apply_label_noise(
            clean, train_file.coarse, cfg.noise.p, cfg.noise.mode, cfg.noise.seed, cfg.num_classes
        )
    train_index, val_index = train_val_split(
        len(clean), cfg.val_count, cfg.split_seed, cfg.train_size, cfg.val_size
    )
    val_labels = noisy[val_index] if cfg.noise.on_val else clean[val_index]
    realised = float(np.mean(noisy[train_index] != clean[train_index]))
    details = {
        **identity,
        "root": str(root),
        "split": {
            "train": len(train_index),
            "val": len(val_index),
            "test": len(test_file.fine),
            "seed": cfg.split_seed,
        },
        "noise": {
            "p": cfg.noise.p,
            "mode": cfg.noise.mode,
            "seed": cfg.noise.seed,
            "on_val": cfg.noise.on_val,
            "realised_fraction": realised,
            **noise_record,
        },
    }
    extra_labels = {
        "train_index": train_index,
        "train_clean": clean[train_index],
        "val_index": val_index,
        "val_labels": val_labels,
    }
    train_images = train_file.images[train_index]
    both_labels = np.stack([clean[train_index], noisy[train_index]], 1)

    def memorisation_probe(indices: np.ndarray) -> ArrayDataset:
        """Training images at `indices`, unaugmented, labelled (clean, noisy)."""
        return ArrayDataset(train_images[indices], both_labels[indices], train=False)

    classes = coarse_of_fine(train_file.fine, train_file.coarse, cfg.num_classes)
    return DataBundle(
        train=ArrayDataset(train_images, noisy[train_index], train=True),
        val=ArrayDataset(train_file.images[val_index], val_labels, train=False),
        test=ArrayDataset(test_file.images, test_file.fine, train=False),
        num_classes=cfg.num_classes,
        name=cfg.name,
        train_labels=noisy[train_index],
        details=details,
        extra_labels=extra_labels,
        memorisation_probe=memorisation_probe,
        groups=noise_groups(cfg.noise.mode, classes),
        test_transform=cifar_test_transform,
        seeds={"noise": cfg.noise.seed, "split": cfg.split_seed},
    )


def cifar_test_transform(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 32, 32, 3), as CIFAR's files hold them, to the model's input."""
    images = torch.as_tensor(images)
    return normalize(images.permute(0, 3, 1, 2))


def build_cifar100(cfg) -> DataBundle:
    root = Path(cfg.root)
    ensure_files(root, cfg.download)
    return build_from_files(cfg, root, files_identity(root))


def build_synthetic(cfg) -> DataBundle:
    root = Path(cfg.root)
    parameters = synthetic.ensure_generated(
        root,
        cfg.synthetic.num_train,
        cfg.synthetic.num_test,
        cfg.synthetic.seed,
        cfg.synthetic.pixel_noise,
    )
    identity = {"official": False, "synthetic": parameters}
    return build_from_files(cfg, root, identity)
