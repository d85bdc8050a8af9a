"""Label noise for CIFAR-100, with the three rules a run can name (`dataset.noise.mode`).

- block: the rule of the paper's public code, which produced the published numbers: with
  probability p the label becomes 5 * (y // 5) + u, u uniform in {0..4}.  Fine labels are
  numbered alphabetically, so these blocks of 5 consecutive labels are not super-classes.
- superclass: the rule the paper describes: with probability p the label is redrawn uniformly
  among the 5 fine classes of its coarse class.
- uniform: with probability p the label is redrawn uniformly among all classes.
- pairflip: with probability p the label becomes the next class, (y + 1) mod C (the asymmetric
  noise of the label-noise literature).
- human: the labels of human annotators, CIFAR-100N's `noisy_label` (data/human_noise.py; p is
  not used, the realised rate is recorded).

A redraw may return the original label, so the expected fraction of changed labels is
0.8 p for block and superclass (1 - 1/5), (1 - 1/C) p for uniform and p for pairflip.
"""

from dataclasses import dataclass

import numpy as np

MODES = ("block", "superclass", "uniform", "pairflip", "human")
DRAWN_MODES = MODES[:4]  # the rules drawn from p and a seed


@dataclass
class NoiseSettings:
    """The `dataset.noise` section of a data set with label noise."""

    p: float
    mode: str
    seed: int
    on_val: bool
    file: str | None = None  # mode=human: the CIFAR-100N label file (CIFAR-100_human.pt)


def check_noise(p: float, mode: str, file: str | None = None) -> None:
    if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dataset.noise.p must be in [0, 1], got {p!r}")
    if mode not in MODES:
        raise ValueError(f"dataset.noise.mode must be one of {MODES}, got {mode!r}")
    if mode == "human" and not file:
        raise ValueError(
            "dataset.noise.mode=human needs dataset.noise.file: the path of CIFAR-100N's "
            "CIFAR-100_human.pt"
        )
    if mode == "human" and p != 0:
        raise ValueError(
            f"dataset.noise.p={p} is not used by mode=human (the file's labels are the noise); "
            "leave it at 0"
        )
    if mode != "human" and file:
        raise ValueError(f"dataset.noise.file is read by mode=human only, not by mode={mode}")


def apply_label_noise(
    fine: np.ndarray, coarse: np.ndarray, p: float, mode: str, seed: int, num_classes: int = 100
) -> np.ndarray:
    """Noisy copy of `fine` labels, drawn from `seed` alone (independent of any training seed),
    by one of the drawn rules (DRAWN_MODES)."""
    check_noise(p, mode)
    if mode not in DRAWN_MODES:
        raise ValueError(f"mode={mode} labels are read from a file, not drawn")
    rng = np.random.default_rng(seed)
    redraw = rng.random(len(fine)) < p
    if mode == "block":
        candidates = 5 * (fine // 5) + rng.integers(0, 5, len(fine))
    elif mode == "superclass":
        members = _members_of_coarse(fine, coarse)
        candidates = members[coarse, rng.integers(0, members.shape[1], len(fine))]
    elif mode == "uniform":
        candidates = rng.integers(0, num_classes, len(fine))
    else:
        candidates = (fine + 1) % num_classes
    return np.where(redraw, candidates, fine).astype(np.int64)


def _members_of_coarse(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """(num_coarse, 5) table of the fine classes in each coarse class, read off the data."""
    pairs = np.unique(np.stack([coarse, fine], 1), axis=0)
    table = [pairs[pairs[:, 0] == c, 1] for c in range(coarse.max() + 1)]
    sizes = {len(row) for row in table}
    if len(sizes) != 1:
        raise ValueError(f"every coarse class must hold the same number of fine classes: {sizes}")
    return np.stack(table)


def noise_groups(mode: str, coarse_of_fine: np.ndarray) -> tuple[str, np.ndarray]:
    """The groups inside which a run's noise moves labels, as (name, group of each class): the
    blocks of 5 consecutive labels for `block`, the super-classes otherwise (the data's own
    structure where the noise has none)."""
    if mode == "block":
        return "block", np.arange(len(coarse_of_fine)) // 5
    return "superclass", np.asarray(coarse_of_fine)


def coarse_of_fine(fine: np.ndarray, coarse: np.ndarray, num_classes: int) -> np.ndarray:
    """The coarse class of each fine class, read off labelled data (-1 for a class not seen)."""
    table = np.full(num_classes, -1, dtype=np.int64)
    table[fine] = coarse
    return table
