"""ImageNet with reduced training sets (`dataset=imagenet`), as in the paper's Table 2.

`root` holds `train/` and `val/` in ImageFolder layout.  50 images per class are held out of
`train/` as a balanced validation set (fixed seed); `train_per_class` in {64, 128, 320, 640,
null} draws a balanced training subset from the rest, per class with fixed seeds, so larger
subsets contain smaller ones.  The official `val/` is the test set, evaluated with ten crops.
The file index is cached next to the data and rebuilt when a class folder changes.
"""

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms
from torchvision.datasets.folder import IMG_EXTENSIONS, default_loader, find_classes, make_dataset

from topk_repro.config.components import DatasetSettings, at_least
from topk_repro.data.bundle import DataBundle
from topk_repro.data.order import EpochSeeded
from topk_repro.data.splits import balanced_subset
from topk_repro.files import write_atomically

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _stamp(folder: Path, classes: list[str]) -> list:
    return [[name, os.stat(folder / name).st_mtime_ns] for name in classes]


def _read_index(cache: Path) -> dict | None:
    """The cached index, or None when it is missing or damaged (it is then rebuilt)."""
    try:
        cached = json.loads(cache.read_text())
    except (OSError, ValueError):
        return None
    keys = ("stamp", "classes", "paths", "labels")
    return cached if isinstance(cached, dict) and all(k in cached for k in keys) else None


def index_cache(folder: Path) -> Path:
    """Where the index of an ImageFolder tree is cached: $TOPK_REPRO_CACHE, else the user's
    cache folder ($XDG_CACHE_HOME/smooth-topk, else ~/.cache/smooth-topk); never in the data
    folder, which on a cluster is often shared and read-only."""
    base = os.environ.get("TOPK_REPRO_CACHE")
    if not base:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "smooth-topk"
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return Path(base) / "imagenet-index" / f"{key}-{folder.name}.json"


def scan_folder(folder: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(classes, relative paths, labels) of an ImageFolder tree, cached by `index_cache`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"ImageNet folder {folder} not found; dataset.root must hold train/ and val/ in "
            "ImageFolder layout (see README, 'Getting ImageNet')"
        )
    classes, class_to_idx = find_classes(str(folder))
    cache = index_cache(folder)
    stamp = _stamp(folder, classes)
    cached = _read_index(cache)
    if cached is not None and cached["stamp"] == stamp:
        return cached["classes"], cached["paths"], np.asarray(cached["labels"], np.int64)
    samples = make_dataset(str(folder), class_to_idx, extensions=IMG_EXTENSIONS)
    paths = [os.path.relpath(path, folder) for path, _ in samples]
    labels = [label for _, label in samples]
    index = {"stamp": stamp, "classes": classes, "paths": paths, "labels": labels}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(cache, json.dumps(index).encode())
    except OSError as error:  # a cache that cannot be written only costs a rescan next time
        warnings.warn(f"ImageNet index not cached at {cache}: {error}", stacklevel=2)
    return classes, paths, np.asarray(labels, np.int64)


class StackCrops:
    """Apply a transform to each crop of a TenCrop tuple and stack them: (10, C, H, W)."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, crops) -> torch.Tensor:
        return torch.stack([self.transform(crop) for crop in crops])


def _problems_only(results: list[str]) -> list[str]:
    return [result for result in results if result]


class _Decodes(torch.utils.data.Dataset):
    """'' for an image file that decodes, else '<path>: <why>'."""

    def __init__(self, folder: Path, paths: list[str]):
        self.folder, self.paths = folder, paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> str:
        path = self.folder / self.paths[index]
        try:
            with Image.open(path) as image:
                image.load()
        except (OSError, ValueError) as error:  # missing, truncated or not an image
            return f"{path}: {error}"
        return ""


class ImageListDataset(EpochSeeded, torch.utils.data.Dataset):
    """Image files and labels; the random transforms of each image draw from its own seed,
    whichever worker loads it."""

    def __init__(self, folder: Path, paths: list[str], labels: np.ndarray, transform):
        self.folder, self.paths, self.transform = Path(folder), paths, transform
        self.labels = torch.as_tensor(labels, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.paths)

    def check_readable(self, num_workers: int) -> None:
        """ValueError naming the files that do not decode (every image is decoded once, in
        `num_workers` DataLoader workers: about a minute for ImageNet's 50,000 test images on 8
        workers)."""
        loader = torch.utils.data.DataLoader(
            _Decodes(self.folder, self.paths),
            batch_size=64,
            num_workers=num_workers,
            collate_fn=_problems_only,
        )
        bad = [problem for batch in loader for problem in batch]
        if bad:
            listed = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise ValueError(f"{len(bad)} image(s) under {self.folder} cannot be read: {listed}")

    def __getitem__(self, index: int):
        path = self.folder / self.paths[index]
        try:
            image = default_loader(str(path))
        except (OSError, ValueError) as error:  # truncated or not an image
            raise ValueError(f"cannot read image {path}: {error}") from None
        with torch.random.fork_rng(devices=[]):  # torchvision draws from the global generator
            torch.manual_seed(self.seed_of(index))
            return self.transform(image), self.labels[index]


def _transforms(cfg):
    normalise = transforms.Normalize(MEAN, STD)
    to_tensor = transforms.Compose([transforms.ToTensor(), normalise])
    train = transforms.Compose(
        [transforms.RandomResizedCrop(cfg.image_size), transforms.RandomHorizontalFlip(), to_tensor]
    )
    val = transforms.Compose(
        [transforms.Resize(cfg.resize), transforms.CenterCrop(cfg.image_size), to_tensor]
    )
    if cfg.test_crops == 1:  # 1 or 10 (checked by `check`)
        return train, val, val
    crops = transforms.TenCrop(cfg.image_size)
    test = transforms.Compose([transforms.Resize(cfg.resize), crops, StackCrops(to_tensor)])
    return train, val, test


@dataclass
class ImageNetSettings(DatasetSettings):
    """`dataset=imagenet`: the keys of configs/dataset/imagenet.yaml beyond every data set's."""

    val_per_class: int
    train_per_class: int | None
    subset_seed: int
    image_size: int
    resize: int
    test_crops: int


def check(cfg, num_classes: int) -> None:
    if cfg.train_per_class is not None and cfg.train_per_class < 1:
        raise ValueError(f"dataset.train_per_class must be >= 1 or null, got {cfg.train_per_class}")
    at_least("dataset.val_per_class", cfg.val_per_class, 1)
    if cfg.test_crops not in (1, 10):
        raise ValueError(f"dataset.test_crops must be 1 or 10, got {cfg.test_crops}")


def build_imagenet(cfg) -> DataBundle:
    root = Path(cfg.root)
    classes, paths, labels = scan_folder(root / "train")
    if len(classes) != cfg.num_classes:
        raise ValueError(
            f"dataset.num_classes={cfg.num_classes}, but {root / 'train'} holds {len(classes)} "
            f"class folders: set dataset.num_classes={len(classes)} (the config check, the loss "
            "and the run identity read it), or point dataset.root at the intended folder"
        )
    test_classes, test_paths, test_labels = scan_folder(root / "val")
    if test_classes != classes:
        raise ValueError(f"{root / 'val'} must hold the same class folders as {root / 'train'}")
    val_index = balanced_subset(
        labels, cfg.val_per_class, cfg.split_seed, key="dataset.val_per_class"
    )
    train_index = balanced_subset(
        labels,
        cfg.train_per_class,
        cfg.subset_seed,
        exclude=val_index,
        key="dataset.train_per_class",
    )
    train_tf, val_tf, test_tf = _transforms(cfg)

    def subset(index, transform):
        return ImageListDataset(root / "train", [paths[i] for i in index], labels[index], transform)

    details = {
        "root": str(root),
        "official": None,
        "classes": len(classes),
        "split": {
            "train": len(train_index),
            "val": len(val_index),
            "test": len(test_paths),
            "train_per_class": cfg.train_per_class,
            "val_per_class": cfg.val_per_class,
            "seed": cfg.split_seed,
            "subset_seed": cfg.subset_seed,
        },
    }
    test = ImageListDataset(root / "val", test_paths, test_labels, test_tf)
    return DataBundle(
        train=subset(train_index, train_tf),
        val=subset(val_index, val_tf),
        test=test,
        check_before_training=test.check_readable,
        num_classes=len(classes),
        name=cfg.name,
        train_labels=labels[train_index],
        details=details,
        extra_labels={
            "train_index": train_index,
            "train_clean": labels[train_index],
            "val_index": val_index,
        },
        test_crops=cfg.test_crops,
        seeds={"noise": None, "split": cfg.split_seed, "subset": cfg.subset_seed},
    )
