"""Uncertainty of results over seeds: t intervals for a mean and for a paired difference.

A paired difference compares two losses run with the same seeds: the same noise realisation
(its seed is part of the configuration) and the same initialisation and data order (the
training seed), so seed-to-seed variation common to both cancels.  With n seeds the 95%
interval is mean +- t_{0.975, n-1} * sd / sqrt(n); with one seed there is none.
"""

import math
from dataclasses import dataclass

# Two-sided 95% critical values of Student's t for 1..30 degrees of freedom (standard tables).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_critical(degrees_of_freedom: int) -> float:
    """t_{0.975, df}; beyond 30 degrees of freedom the table's last values approach 1.96."""
    if degrees_of_freedom < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {degrees_of_freedom}")
    if degrees_of_freedom <= len(_T975):
        return _T975[degrees_of_freedom - 1]
    return 1.96 + 2.4 / degrees_of_freedom  # within 0.003 of the exact value for df > 30


@dataclass(frozen=True)
class Interval:
    """A mean over n values with its 95% interval (low = high = nan when n < 2)."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        return self.n >= 2 and (self.low > 0 or self.high < 0)

    def text(self, digits: int = 2) -> str:
        """'+1.23 [0.45, 2.01], 3 seeds' (or '+1.23, 1 seed: no interval')."""
        if self.n < 2:
            return f"{self.mean:+.{digits}f}, 1 seed: no interval"
        low, high = f"{self.low:+.{digits}f}", f"{self.high:+.{digits}f}"
        return f"{self.mean:+.{digits}f} [{low}, {high}], {self.n} seeds"


def mean_interval(values) -> Interval:
    """The mean of `values` and its 95% t interval."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_critical(n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def paired_difference(ours: dict, baseline: dict) -> Interval | None:
    """Mean and interval of ours[seed] - baseline[seed] over the seeds both have."""
    seeds = sorted(set(ours) & set(baseline))
    if not seeds:
        return None
    return mean_interval([ours[s] - baseline[s] for s in seeds])
