"""Seeded train/validation splits and balanced per-class subsets."""

import numpy as np


def train_val_split(
    count: int,
    val_count: int,
    seed: int,
    train_size: int | None = None,
    val_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a random (train, val) split of `count` items: `val_count` go to validation.

    `train_size` / `val_size` shrink either part by keeping its first items, so a smaller run
    uses a prefix of what the full split would use.
    """
    order = np.random.default_rng(seed).permutation(count)
    val, train = order[:val_count], order[val_count:]
    for name, size, part in (("train_size", train_size, train), ("val_size", val_size, val)):
        if size is not None and not 0 < size <= len(part):
            raise ValueError(f"dataset.{name} must be in [1, {len(part)}], got {size}")
    return train[:train_size], val[:val_size]


def balanced_subset(
    labels: np.ndarray,
    per_class: int | None,
    seed: int,
    exclude: np.ndarray | None = None,
    key: str = "per_class",
) -> np.ndarray:
    """`per_class` indices of each class (all if None), never from `exclude`; `key` is the
    setting `per_class` comes from, for the error when a class has too few.

    Each class's items are shuffled once with a per-class seed, so a larger subset contains every
    smaller one drawn with the same seed.
    """
    excluded = np.zeros(len(labels), bool)
    if exclude is not None:
        excluded[exclude] = True
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero((labels == label) & ~excluded)
        members = np.random.default_rng([seed, int(label)]).permutation(members)
        if per_class is not None and per_class > len(members):
            raise ValueError(
                f"class {label} has {len(members)} images available, fewer than {key}={per_class}"
            )
        chosen.append(members[:per_class])
    return np.sort(np.concatenate(chosen))
