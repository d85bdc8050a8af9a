"""Batching for the engine: a seeded per-epoch order that also splits the data across ranks."""

import multiprocessing
import signal
import sys

import torch

from topk_repro.data.arrays import ArrayDataset, DeviceLoader
from topk_repro.data.order import EpochSeeded, epoch_seed, rank_count, rank_indices


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


def worker_context():
    """The multiprocessing context of DataLoader workers: "fork" on Linux, named explicitly.
    Inside a joblib (loky) job the default context would pickle the worker's arguments, loky's
    process object among them, which fails ('Process' object has no attribute 'env'); a fork
    needs no pickling.  Elsewhere torch's default."""
    if sys.platform == "linux":
        return multiprocessing.get_context("fork")
    return None


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def ignore_stop_signals(_worker_id: int) -> None:
    """DataLoader workers leave SIGINT/SIGTERM to the main process, which stops the run at a
    safe point and shuts them down (a cluster signals the whole process group).  Workers start
    with these signals blocked (`SeededLoader.__iter__`), so one sent while a worker starts is
    dropped here instead of killing it."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


class SeededLoader:
    """A DataLoader whose order and per-sample augmentation seeds derive from (seed, epoch),
    set by `set_epoch`."""

    def __init__(
        self,
        dataset,
        sampler: EpochSampler,
        batch_size: int,
        num_workers: int,
        pin_memory: bool,
        seed: int,
    ):
        self.sampler, self.seed, self.dataset = sampler, seed, dataset
        self.generator = torch.Generator()
        self.loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=num_workers,
            pin_memory=pin_memory,
            generator=self.generator,
            persistent_workers=False,
            worker_init_fn=ignore_stop_signals if num_workers > 0 else None,
            multiprocessing_context=worker_context() if num_workers > 0 else None,
        )

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        self.generator.manual_seed(epoch_seed(self.seed, epoch))
        if isinstance(self.dataset, EpochSeeded):
            self.dataset.set_epoch_seed(epoch_seed(self.seed, epoch))

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        if self.loader.num_workers == 0:
            return iter(self.loader)
        # Workers fork here: block the stop signals until each worker has chosen to ignore
        # them; the main process gets any that arrived as soon as the mask is restored.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            return iter(self.loader)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


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
