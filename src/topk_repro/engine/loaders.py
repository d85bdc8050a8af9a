"""Batching for the engine: a seeded per-epoch order that also splits the data across ranks."""

import torch

from topk_repro.data.arrays import ArrayDataset, DeviceLoader
from topk_repro.data.order import epoch_seed, rank_count, rank_indices


class EpochSampler(torch.utils.data.Sampler):
    """Shuffled (or ordered) indices for one rank; training ranks get equal counts (DDP)."""

    def __init__(
        self,
        size: int,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        equal_counts: bool = False,
    ):
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.rank, self.world_size, self.equal_counts, self.epoch = (
            rank,
            world_size,
            equal_counts,
            0,
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        indices = rank_indices(
            self.size, self.shuffle, generator, self.rank, self.world_size, self.equal_counts
        )
        return iter(indices.tolist())

    def __len__(self) -> int:
        return rank_count(self.size, self.rank, self.world_size, self.equal_counts)


class SeededLoader:
    """A DataLoader whose worker seeds are reset from (seed, epoch) by `set_epoch`."""

    def __init__(
        self,
        dataset,
        sampler: EpochSampler,
        batch_size: int,
        num_workers: int,
        pin_memory: bool,
        seed: int,
    ):
        self.sampler, self.seed = sampler, seed
        self.generator = torch.Generator()
        self.loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=num_workers,
            pin_memory=pin_memory,
            generator=self.generator,
            persistent_workers=False,
        )

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        self.generator.manual_seed(epoch_seed(self.seed, epoch))

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)


def build_loader(
    dataset,
    *,
    train: bool,
    batch_size: int,
    loader: str,
    num_workers: int,
    device: torch.device,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
):
    """Standard DataLoader path, or the on-device path for in-memory CIFAR-format sets."""
    if loader == "device":
        if not isinstance(dataset, ArrayDataset):
            raise ValueError("dataset.loader=device needs an in-memory CIFAR-format data set")
        return DeviceLoader(
            dataset,
            batch_size,
            shuffle=train,
            device=device,
            seed=seed,
            rank=rank,
            world_size=world_size,
        )
    if loader != "standard":
        raise ValueError(f"dataset.loader must be 'standard' or 'device', got {loader!r}")
    sampler = EpochSampler(
        len(dataset), shuffle=train, seed=seed, rank=rank, world_size=world_size, equal_counts=train
    )
    return SeededLoader(
        dataset, sampler, batch_size, num_workers, pin_memory=device.type == "cuda", seed=seed
    )
