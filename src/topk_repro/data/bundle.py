"""What every data set builder returns to the engine."""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class DataBundle:
    """Train/val/test sets plus what the run folder records about them.

    Required: the three sets, the class count, the data set's `name` and `train_labels`, the
    labels the model trains on (noisy where the data set adds noise): what losses may count,
    and labels.npz's `train_noisy`.
    Optional: `details`, what else run.json records about the data (its identity, split sizes,
    realised noise; `record` adds the name); `extra_labels`, other arrays for labels.npz (the
    clean labels, the split's indices; `labels` adds `train_noisy`).
    `test_crops` > 1 means each test item is a stack of crops whose outputs are averaged.
    `check_before_training(num_workers)`, when given, raises ValueError naming the files that
    a later stage would fail on (ImageNet: test images that do not decode), so a damaged file
    is found before the training, not after it.
    Diagnostics (engine/diagnostics.py): `memorisation_probe(indices)` gives the training images
    at `indices` unaugmented, labelled (clean, noisy), for data sets with label noise;
    `groups` names the classes' noise groups and gives each class's group;
    `test_transform` maps the data's raw images to the model's test input (for notebooks).
    `seeds` are the seeds that drew the data (split, noise, subset), recorded in run.json.
    """

    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset
    test: torch.utils.data.Dataset
    num_classes: int
    name: str
    train_labels: np.ndarray
    details: dict = field(default_factory=dict)
    extra_labels: dict[str, np.ndarray] = field(default_factory=dict)
    test_crops: int = 1
    check_before_training: Callable[[int], None] | None = None
    memorisation_probe: Callable[[np.ndarray], torch.utils.data.Dataset] | None = None
    groups: tuple[str, np.ndarray] | None = None
    test_transform: Callable | None = None
    seeds: dict[str, int | None] = field(default_factory=dict)

    @property
    def record(self) -> dict:
        """What run.json records about the data (`dataset`)."""
        return {"name": self.name, **self.details}

    @property
    def labels(self) -> dict[str, np.ndarray]:
        """What labels.npz holds."""
        return {"train_noisy": self.train_labels, **self.extra_labels}

    def summary(self) -> str:
        noise = self.record.get("noise", {})
        noise_text = (
            f", noise p={noise['p']} ({noise['mode']}) realised {noise['realised_fraction']:.3f}"
            if noise
            else ""
        )
        kind = "official" if self.record.get("official") else "NOT official (synthetic or fixture)"
        return (
            f"data {self.name} [{kind}]: train {len(self.train)}, val {len(self.val)}, "
            f"test {len(self.test)}, {self.num_classes} classes{noise_text}"
        )
