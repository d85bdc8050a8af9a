"""In-memory image sets (CIFAR-format data) and the two ways to batch them.

- `ArrayDataset` + torch's DataLoader: the standard path, one image per `__getitem__`.
- `DeviceLoader` (`dataset.loader=device`): the whole split as one uint8 tensor on the training
  device, augmented and normalised there in batches, with no per-image Python.
Both use `augment.random_crop_flip`; the standard path seeds each image's augmentation from
(seed, epoch, index), the device path each batch's from (seed, epoch).
"""

import numpy as np
import torch

from topk_repro.data.augment import normalize, random_crop_flip
from topk_repro.data.order import EpochSeeded, epoch_seed, rank_count, rank_indices


class ArrayDataset(EpochSeeded, torch.utils.data.Dataset):
    """Images (N, 32, 32, 3) uint8 and labels (N,); augments when `train` is true, each image
    from its own seed, whichever worker loads it."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, train: bool):
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2)  # (N, 3, 32, 32) view
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.train = train

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = self.images[index : index + 1]
        if self.train:
            generator = torch.Generator().manual_seed(self.seed_of(index))
            image = random_crop_flip(image, generator)
        return normalize(image)[0], self.labels[index]


class DeviceLoader:
    """Batches of a split held on `device`; `set_epoch` fixes the epoch's order and augmentation."""

    def __init__(
        self,
        dataset: ArrayDataset,
        batch_size: int,
        shuffle: bool,
        device,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.images = dataset.images.contiguous().to(device)
        self.labels = dataset.labels.to(device)
        self.train, self.batch_size, self.shuffle = dataset.train, batch_size, shuffle
        self.device = torch.device(device)
        self.seed, self.rank, self.world_size, self.epoch = seed, rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        per_rank = rank_count(len(self.labels), self.rank, self.world_size, self.train)
        return -(-per_rank // self.batch_size)

    def __iter__(self):
        generator = torch.Generator(device=self.device)
        generator.manual_seed(epoch_seed(self.seed, self.epoch))
        indices = rank_indices(
            len(self.labels),
            self.shuffle,
            generator,
            self.rank,
            self.world_size,
            equal_counts=self.train,
            device=self.device,
        )
        for start in range(0, len(indices), self.batch_size):
            batch = indices[start : start + self.batch_size]
            images = self.images[batch]
            if self.train:
                images = random_crop_flip(images, generator)
            yield normalize(images), self.labels[batch]
