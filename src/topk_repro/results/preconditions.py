"""What must be true of a study's runs before they can hold or fail one of the paper's claims.

A claim was made under a protocol and in a regime; runs outside either can show differences,
never a verdict on the claim.

- *Protocol*: the settings the claim assumes: the smooth SVM's own settings (k, tau, alpha),
  the optimiser settings of each compared loss relative to cross-entropy's (Table 2 trains the
  SVM at 10 times CE's learning rate and a quarter of its weight decay), and settings fixed
  for the whole study (Table 2's clean labels).  Ratios, not absolute values, so that a
  CPU-scale study is held to the same protocol as the paper's.
- *Regime*: preconditions measured from the runs' own records, at their last epoch (from
  metrics.jsonl, or a W&B summary's last-logged values): the models fit their training labels
  (each loss at its own k: top-1 for CE, top-5 for a top-5 loss), and, for the noise claims,
  cross-entropy has gone on to fit the changed labels at the highest noise level.  Each
  measure is the mean over the seeds of a configuration.

Each check returns the reasons it is unmet, naming the setting or the measure and its threshold;
an empty list means it is met.
"""

import math
from dataclasses import dataclass, field

import pandas as pd

from topk_repro.results.layout import is_null, row_label

# The last epoch's memorisation measures (engine/diagnostics.py), as collect.py's rows hold them.
FIT_TOP1, FIT_TOP5 = "memo/unchanged/top1", "memo/unchanged/top5"
NOISY_FIT = "memo/changed/noisy_top1"


@dataclass(frozen=True)
class Protocol:
    """The settings a claim family assumes, with the paper's table they come from."""

    source: str
    svm: dict = field(default_factory=dict)  # the smooth SVM's settings, e.g. {"loss.tau": 1.0}
    over_ce: dict = field(default_factory=dict)  # compared loss / CE, e.g. {"optim.lr": 10.0}
    fixed: dict = field(default_factory=dict)  # every run, e.g. {"dataset.noise.p": 0.0}

    def text(self) -> str:
        parts = [f"{k} = {v:g}" for k, v in self.fixed.items()]
        parts += [f"the SVM's {k} = {v:g}" for k, v in self.svm.items()]
        parts += [f"{k} = {v:g} x CE's" for k, v in self.over_ce.items()]
        return f"{self.source}: " + ", ".join(parts)


@dataclass(frozen=True)
class Regime:
    """Thresholds (% at the last epoch) the runs must reach; None: not required."""

    fit: float = 95.0  # each loss's fit of its training labels at its own k
    noisy_fit: float | None = None  # CE's fit of the changed labels (top-1) at the highest p
    fit_of: str = "each loss"  # whose fit is required
    fit_where: str = "at p = 0"  # the runs it is measured on

    def text(self) -> str:
        parts = [
            f"{self.fit_of} fits >= {self.fit:g}% of its training labels at its own k "
            f"{self.fit_where}"
        ]
        if self.noisy_fit is not None:
            parts.append(f"CE fits >= {self.noisy_fit:g}% of the changed labels at the highest p")
        return "; ".join(parts)


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _values(runs: pd.DataFrame, key: str) -> list:
    """The distinct values `runs` record for `key` (None when a run lacks it)."""
    column = runs[key] if key in runs else pd.Series([None] * len(runs), dtype=object)
    return list(dict.fromkeys(None if is_null(v) else v for v in column))


def _shown(values: list) -> str:
    return ", ".join("not recorded" if v is None else row_label(v) for v in values)


def protocol_deviations(
    runs: pd.DataFrame, protocol: Protocol, ce: str, svm: str | None, compared: list[str]
) -> list[str]:
    """'other protocol: <key> = x, the paper's y' for each setting that differs from the
    protocol; `compared` are the labels of the losses set against CE (`ce`), `svm` the smooth
    SVM's label among them."""
    reasons = []
    for key, expected in protocol.fixed.items():
        found = _values(runs, key)  # a data set without the setting (ImageNet's noise) has none
        if any(v is not None and not _same(v, expected) for v in found):
            reasons.append(f"{key} = {_shown(found)}, the paper's {expected:g}")
    if svm is not None:
        for key, expected in protocol.svm.items():
            found = _values(runs[runs["loss"] == svm], key)
            if any(v is None or not _same(v, expected) for v in found):
                reasons.append(f"{key} = {_shown(found)}, the paper's {expected:g}")
    baseline = runs[runs["loss"] == ce]
    for key, ratio in protocol.over_ce.items():
        ce_values = _values(baseline, key)
        for label in compared:
            values = _values(runs[runs["loss"] == label], key)
            if None in values or None in ce_values or 0 in ce_values:
                reasons.append(f"{key} of {label} / CE: {_shown(values)} / {_shown(ce_values)}")
                continue
            ratios = sorted({v / c for v in values for c in ce_values})
            if any(not _same(r, ratio) for r in ratios):
                reasons.append(f"{key} of {label} / CE = {_shown(ratios)}, the paper's {ratio:g}")
    return [f"other protocol: {r}" for r in reasons]


def own_k_measure(runs: pd.DataFrame, label: str) -> tuple[str, str]:
    """The training-fit measure of a loss at its own k: top-1 for a loss without k or with
    k = 1, top-5 otherwise (the probe records top-1 and top-5)."""
    ks = [k for k in _values(runs[runs["loss"] == label], "loss.k") if k is not None]
    return (FIT_TOP5, "top-5") if ks and max(ks) > 1 else (FIT_TOP1, "top-1")


def _mean_at(runs: pd.DataFrame, label: str, row, measure: str) -> tuple[float | None, int]:
    """The mean over seeds of `measure` for (loss, row), and the number of seeds it has."""
    part = runs[(runs["loss"] == label) & (runs["row"] == row)]
    values = part[measure].dropna().astype(float) if measure in part else pd.Series([], dtype=float)
    return (float(values.mean()) if len(values) else None), len(values)


def _unmeasured(label: str, row_text: str, measure: str) -> str:
    return (
        f"regime not measured: {label} at {row_text} has no {measure} at its last epoch "
        "(metrics.jsonl; diagnostics.memorisation_images = 0 turns the probe off)"
    )


def fit_shortfalls(
    runs: pd.DataFrame, labels: list[str], rows: list, row_name: str, threshold: float
) -> list[str]:
    """'regime not reached: <loss> fits x% of its training labels ..., needs y%' for each
    (loss, row) whose mean fit at its own k is below `threshold`."""
    reasons = []
    for row in rows:
        row_text = f"{row_name} {row_label(row)}"
        for label in labels:
            measure, k_text = own_k_measure(runs, label)
            value, seeds = _mean_at(runs, label, row, measure)
            if value is None:
                reasons.append(_unmeasured(label, row_text, measure))
            elif value < threshold:
                reasons.append(
                    f"regime not reached: {label} fits {value:.1f}% of its training labels "
                    f"({k_text}, {row_text}, mean of {seeds} seeds), needs {threshold:g}%"
                )
    return reasons


def noisy_fit_shortfall(
    runs: pd.DataFrame, ce: str, row, row_name: str, threshold: float
) -> list[str]:
    """'regime not reached: CE fits x% of the changed labels ..., needs y%' when CE's mean fit
    of the labels the noise changed, at `row`, is below `threshold`."""
    row_text = f"{row_name} {row_label(row)}"
    value, seeds = _mean_at(runs, ce, row, NOISY_FIT)
    if value is None:
        return [_unmeasured(ce, row_text, NOISY_FIT)]
    if value < threshold:
        return [
            f"regime not reached: {ce} fits {value:.1f}% of the changed labels (top-1, "
            f"{row_text}, mean of {seeds} seeds), needs {threshold:g}%"
        ]
    return []
