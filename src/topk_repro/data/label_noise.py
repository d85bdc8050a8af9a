"""Label noise for CIFAR-100, with the three rules a run can name (`dataset.noise.mode`).

- block: the rule of the paper's public code, which produced the published numbers: with
  probability p the label becomes 5 * (y // 5) + u, u uniform in {0..4}.  Fine labels are
  numbered alphabetically, so these blocks of 5 consecutive labels are not super-classes.
- superclass: the rule the paper describes: with probability p the label is redrawn uniformly
  among the 5 fine classes of its coarse class.
- uniform: with probability p the label is redrawn uniformly among all classes.

A redraw may return the original label, so the expected fraction of changed labels is
0.8 p for block and superclass (1 - 1/5) and (1 - 1/C) p for uniform.
"""

from dataclasses import dataclass

import numpy as np

MODES = ("block", "superclass", "uniform")


@dataclass
class NoiseSettings:
    """The `dataset.noise` section of a data set with label noise."""

    p: float
    mode: str
    seed: int
    on_val: bool


def check_noise(p: float, mode: str) -> None:
    if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dataset.noise.p must be in [0, 1], got {p!r}")
    if mode not in MODES:
        raise ValueError(f"dataset.noise.mode must be one of {MODES}, got {mode!r}")


def apply_label_noise(
    fine: np.ndarray, coarse: np.ndarray, p: float, mode: str, seed: int, num_classes: int = 100
) -> np.ndarray:
    """Noisy copy of `fine` labels, drawn from `seed` alone (independent of any training seed)."""
    check_noise(p, mode)
    rng = np.random.default_rng(seed)
    redraw = rng.random(len(fine)) < p
    if mode == "block":
        candidates = 5 * (fine // 5) + rng.integers(0, 5, len(fine))
    elif mode == "superclass":
        members = _members_of_coarse(fine, coarse)
        candidates = members[coarse, rng.integers(0, members.shape[1], len(fine))]
    else:
        candidates = rng.integers(0, num_classes, len(fine))
    return np.where(redraw, candidates, fine).astype(np.int64)


def _members_of_coarse(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """(num_coarse, 5) table of the fine classes in each coarse class, read off the data."""
    pairs = np.unique(np.stack([coarse, fine], 1), axis=0)
    table = [pairs[pairs[:, 0] == c, 1] for c in range(coarse.max() + 1)]
    sizes = {len(row) for row in table}
    if len(sizes) != 1:
        raise ValueError(f"every coarse class must hold the same number of fine classes: {sizes}")
    return np.stack(table)
