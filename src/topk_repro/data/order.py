"""The order of a split in one epoch, shared by both input pipelines: a function of (seed, epoch)
alone, so a resumed run sees the same batches, and split across distributed ranks."""

import torch


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's order and augmentation."""
    return seed * 1_000_003 + epoch


def sample_seed(epoch_seed_value: int, index: int) -> int:
    """The seed of one sample's augmentation in one epoch: a function of (seed, epoch, index)
    alone, so results do not depend on how many DataLoader workers draw the samples."""
    return (epoch_seed_value * 1_000_003 + index) % (1 << 62)


class EpochSeeded:
    """A data set whose random transforms draw each sample's randomness from (seed, epoch,
    index): the loader sets the epoch's seed (`set_epoch_seed`) before each epoch, and a sample
    is the same whichever worker loads it."""

    epoch_seed = 0

    def set_epoch_seed(self, seed: int) -> None:
        self.epoch_seed = seed

    def seed_of(self, index: int) -> int:
        return sample_seed(self.epoch_seed, index)


def rank_indices(
    count: int,
    shuffle: bool,
    generator: torch.Generator | None,
    rank: int,
    world_size: int,
    equal_counts: bool,
    device=None,
) -> torch.Tensor:
    """This rank's share of a (shuffled) order of `count` items; with `equal_counts` (training
    under DistributedDataParallel, which hangs on unequal batch counts) the tail is dropped so
    that every rank gets the same number."""
    if shuffle:
        order = torch.randperm(count, generator=generator, device=device)
    else:
        order = torch.arange(count, device=device)
    if equal_counts:
        order = order[: count - count % world_size]
    return order[rank::world_size]


def rank_count(count: int, rank: int, world_size: int, equal_counts: bool) -> int:
    """len(rank_indices(...)), without drawing the order."""
    return count // world_size if equal_counts else len(range(rank, count, world_size))
