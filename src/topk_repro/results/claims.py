"""The paper's claims that runs can test, each stated with its evidence and uncertainty.

A study says in its preset which claims apply to it (`study.claims`) and whether it is sized to
test them (`study.sized_for_claims`); this module names no study.  The families:
- `noise` (Table 1): with noise (p > 0) L_{5,1} beats CE on top-1 and top-5; the gap grows with
  the noise level; with clean labels (p = 0) CE beats L_{5,1} on top-1;
- `comparison`: for each other loss, whether it beats CE on top-5 with noise (no paper asserts
  it: the comparison's summary);
- `data_size` (Table 2): with reduced training sets the smooth top-5 SVM beats CE on top-5; with
  the whole set (the null row, or else the largest size) it does not: CE does at least as well.

Each family declares the protocol and the regime its claims were made in
(results/preconditions.py); runs under another protocol, or that do not reach the regime, get
their differences and the reasons, never a verdict.

Every comparison is a difference paired by seed, "+x.x [a, b], n seeds" (95% t interval,
results/statistics.py).  A claim holds when every interval it rests on lies on its side of zero
and fails when one lies on the other side.  An interval that straddles zero is "unclear"; with
one seed there is no interval, and the sign of a difference is reported as a direction only,
never as a verdict.  A study not sized to test the claims reports its differences only.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from topk_repro.results.layout import baseline_label, finished_runs, label_of, latest_per_run
from topk_repro.results.preconditions import (
    Protocol,
    Regime,
    fit_shortfalls,
    noisy_fit_shortfall,
    protocol_deviations,
)
from topk_repro.results.statistics import Interval, paired_difference

HOLDS, FAILS, UNCLEAR, LACKS_RUNS = "holds", "fails", "unclear", "lacks runs"
ONE_SEED = "1 seed: direction only"
NOT_A_TEST = "not a test at this size"
OTHER_PROTOCOL = "other protocol: no verdict"
REGIME_NOT_REACHED = "regime not reached: no verdict"
REGIME_NOT_MEASURED = "regime not measured: no verdict"
METRICS = ("test/top1", "test/top5")


@dataclass
class Claim:
    experiment: str
    claim: str
    status: str  # HOLDS, FAILS, UNCLEAR, ONE_SEED, NOT_A_TEST, OTHER_PROTOCOL, ... LACKS_RUNS
    detail: str
    family: str = ""  # the claim family (FAMILIES) it belongs to


@dataclass(frozen=True)
class Withheld:
    """Why a family's claims get no verdict: the status they get and its reasons."""

    status: str
    reasons: tuple[str, ...] = ()


def _svm_label(runs: pd.DataFrame) -> str | None:
    """The label of the paper's loss, the smooth top-5 SVM (any tau: a study's own choice)."""
    return label_of(runs, "smooth_topk_svm", k=5)


def _per_seed(runs: pd.DataFrame, loss: str, row, metric: str) -> dict:
    part = runs[(runs["loss"] == loss) & (runs["row"] == row)]
    return dict(zip(part["seed"], part[metric].astype(float), strict=True))


def verdict(intervals: list[Interval], withheld: Withheld | None = None) -> str:
    """The status of a claim that says every interval lies above zero.  Only intervals over two
    seeds or more can hold or fail it; a withheld family (a study not sized for the claims,
    another protocol, a regime not reached) gets no verdict at all."""
    if withheld is not None:
        return withheld.status
    if min(i.n for i in intervals) < 2:
        return ONE_SEED
    if any(i.high < 0 for i in intervals):
        return FAILS
    return HOLDS if all(i.low > 0 for i in intervals) else UNCLEAR


def _difference(runs, ours: str, baseline: str, row, metric: str) -> Interval | None:
    return paired_difference(
        _per_seed(runs, ours, row, metric), _per_seed(runs, baseline, row, metric)
    )


def _numeric_rows(runs: pd.DataFrame) -> list:
    return sorted({r for r in runs["row"] if not isinstance(r, str)})


def _with_both(runs: pd.DataFrame, rows: list, first: str | None, second: str | None) -> list:
    """The rows at which both losses have runs."""
    if not (first and second):
        return []
    return [r for r in rows if {first, second} <= set(runs[runs["row"] == r]["loss"])]


def _rests_on(
    experiment: str, claim: str, pairs: list, withheld: Withheld | None, missing: str
) -> Claim:
    """A claim resting on (label, interval) pairs, or lacking runs when there are none; a
    withheld claim's detail starts with the reasons."""
    pairs = [(label, d) for label, d in pairs if d is not None]
    if not pairs:
        return Claim(experiment, claim, LACKS_RUNS, missing)
    detail = "; ".join(f"{label}: {d.text()}" for label, d in pairs)
    if withheld is not None and withheld.reasons:
        detail = "; ".join(withheld.reasons) + ". Differences: " + detail
    return Claim(experiment, claim, verdict([d for _, d in pairs], withheld), detail)


def _noise_claims(experiment: str, runs: pd.DataFrame, withheld: Withheld | None) -> list[Claim]:
    svm, ce = _svm_label(runs), baseline_label(runs)
    both = _with_both(runs, _numeric_rows(runs), svm, ce)
    noisy = [p for p in both if float(p) > 0]
    name = svm or "L_5"
    claims = [
        _rests_on(
            experiment,
            f"with noise (p > 0), {name} beats CE on top-1 and top-5",
            [(f"p={p} {m[5:]}", _difference(runs, svm, ce, p, m)) for p in noisy for m in METRICS],
            withheld,
            "need CE and SVM runs with p > 0",
        )
    ]

    claim = "the SVM-CE gap grows with the noise level (largest p vs smallest p > 0)"
    if len(noisy) >= 2:
        low, high = noisy[0], noisy[-1]
        growth = []
        for metric in METRICS:
            gaps = {}
            for p in (low, high):
                svm_values, ce_values = (_per_seed(runs, x, p, metric) for x in (svm, ce))
                gaps[p] = {
                    s: svm_values[s] - ce_values[s] for s in set(svm_values) & set(ce_values)
                }
            label = f"{metric[5:]}: gap at p={high} minus gap at p={low}"
            growth.append((label, paired_difference(gaps[high], gaps[low])))
        claims.append(_rests_on(experiment, claim, growth, withheld, "no seed run at both levels"))
    else:
        claims.append(Claim(experiment, claim, LACKS_RUNS, "need two noise levels p > 0"))

    clean = [p for p in both if float(p) == 0]
    claims.append(
        _rests_on(
            experiment,
            "with clean labels (p = 0), CE beats the SVM loss on top-1",
            [("CE - SVM top-1", _difference(runs, ce, svm, clean[0], "test/top1"))]
            if clean
            else [],
            withheld,
            "need CE and SVM runs at p = 0",
        )
    )
    return claims


def _comparison_claims(
    experiment: str, runs: pd.DataFrame, withheld: Withheld | None
) -> list[Claim]:
    """For each other loss: does it beat CE on top-5 with noise?"""
    ce = baseline_label(runs)
    if ce is None:
        return [Claim(experiment, "losses compared with CE", LACKS_RUNS, "need CE runs")]
    noisy = [p for p in _numeric_rows(runs) if float(p) > 0]
    return [
        _rests_on(
            experiment,
            f"{loss} beats CE on top-5 with noise (p > 0)",
            [(f"p={p}", _difference(runs, loss, ce, p, "test/top5")) for p in noisy],
            withheld,
            "need CE and this loss at p > 0",
        )
        for loss in sorted(set(runs["loss"]) - {ce})
    ]


def _sizes(runs: pd.DataFrame) -> tuple[list, object]:
    """The reduced training-set sizes with CE and SVM runs, and the whole set: the null row, or
    else the largest size (None when there is neither)."""
    svm, ce = _svm_label(runs), baseline_label(runs)
    sizes = _with_both(runs, _numeric_rows(runs), svm, ce)
    whole = _with_both(runs, sorted({r for r in runs["row"] if isinstance(r, str)}), svm, ce)
    full = whole[0] if whole else (sizes[-1] if len(sizes) >= 2 else None)
    return [s for s in sizes if s != full], full


def _data_size_claims(
    experiment: str, runs: pd.DataFrame, withheld: Withheld | None
) -> list[Claim]:
    """Table 2's two claims; the row is the training-set size."""
    svm, ce = _svm_label(runs), baseline_label(runs)
    reduced, full = _sizes(runs)
    return [
        _rests_on(
            experiment,
            "on reduced training sets, the smooth top-5 SVM beats CE on top-5",
            [(f"size {s}", _difference(runs, svm, ce, s, "test/top5")) for s in reduced],
            withheld,
            "need CE and SVM runs on a reduced training set",
        ),
        _rests_on(
            experiment,
            "on the whole training set, CE does at least as well as the SVM on top-5",
            [(f"size {full}: CE - SVM", _difference(runs, ce, svm, full, "test/top5"))]
            if full is not None
            else [],
            withheld,
            "need CE and SVM runs on the whole (or largest) training set",
        ),
    ]


def _noise_regime(runs: pd.DataFrame, regime: Regime, losses: list[str]) -> list[str]:
    """`losses` fit their clean training labels (p = 0); CE fits the changed labels at the
    highest p."""
    ce = baseline_label(runs)
    rows = _numeric_rows(runs)
    clean = [p for p in rows if float(p) == 0]
    if not clean:
        return ["regime not measured: no clean (p = 0) runs to show that the models fit their data"]
    reasons = fit_shortfalls(runs, losses, clean[:1], "p", regime.fit)
    noisy = [p for p in rows if float(p) > 0]
    if regime.noisy_fit is not None and noisy:
        reasons += noisy_fit_shortfall(runs, ce, noisy[-1], "p", regime.noisy_fit)
    return reasons


@dataclass(frozen=True)
class Family:
    """A family of claims: how they are computed, the protocol and the regime they assume."""

    claims: Callable[[str, pd.DataFrame, Withheld | None], list[Claim]]
    protocol: Protocol
    regime: Regime
    compared: Callable[[pd.DataFrame], list[str]]  # the labels set against CE
    unmet_regime: Callable[[pd.DataFrame, Regime, list[str]], list[str]]


def _the_svm(runs: pd.DataFrame) -> list[str]:
    return [label for label in [_svm_label(runs)] if label]


def _every_other_loss(runs: pd.DataFrame) -> list[str]:
    return sorted(set(runs["loss"]) - {baseline_label(runs)})


def _comparison_regime(runs: pd.DataFrame, regime: Regime, losses: list[str]) -> list[str]:
    """The noise regime, measured on CE alone: the other losses are what is compared."""
    return _noise_regime(runs, regime, [label for label in [baseline_label(runs)] if label])


def _data_size_regime(runs: pd.DataFrame, regime: Regime, losses: list[str]) -> list[str]:
    """Every loss fits its training labels at every reduced size."""
    reduced, _ = _sizes(runs)
    return fit_shortfalls(runs, losses, reduced, "size", regime.fit)


TABLE_1 = Protocol(
    "Table 1",
    svm={"loss.k": 5, "loss.tau": 1.0, "loss.alpha": 1.0},
    over_ce={"optim.lr": 1.0, "optim.weight_decay": 1.0},
)
FAMILIES: dict[str, Family] = {
    "noise": Family(
        _noise_claims, TABLE_1, Regime(fit=95.0, noisy_fit=50.0), _the_svm, _noise_regime
    ),
    "comparison": Family(
        _comparison_claims,
        Protocol("Table 1's optimiser for every loss", over_ce=TABLE_1.over_ce),
        Regime(fit=95.0, noisy_fit=50.0, fit_of="CE"),
        _every_other_loss,
        _comparison_regime,
    ),
    "data_size": Family(
        _data_size_claims,
        Protocol(
            "Table 2",
            svm={"loss.k": 5, "loss.tau": 0.1, "loss.alpha": 1.0},
            over_ce={"optim.lr": 10.0, "optim.weight_decay": 0.25},
            fixed={"dataset.noise.p": 0.0},
        ),
        Regime(fit=95.0, fit_where="at every reduced size"),
        _the_svm,
        _data_size_regime,
    ),
}


def withheld(family: Family, runs: pd.DataFrame, sized: bool) -> Withheld | None:
    """Why `family`'s claims get no verdict on these finished runs, or None when they can get
    one: a study not sized for them, another protocol, or a regime not reached (in that
    order of precedence; every reason found is given)."""
    if not sized:
        return Withheld(NOT_A_TEST)
    ce = baseline_label(runs)
    if ce is None:
        return None  # the claims themselves say which runs are lacking
    compared = family.compared(runs)
    deviations = protocol_deviations(runs, family.protocol, ce, _svm_label(runs), compared)
    shortfalls = family.unmet_regime(runs, family.regime, [ce, *compared])
    if deviations:
        return Withheld(OTHER_PROTOCOL, tuple(deviations + shortfalls))
    if any(r.startswith("regime not reached") for r in shortfalls):
        return Withheld(REGIME_NOT_REACHED, tuple(shortfalls))
    if shortfalls:
        return Withheld(REGIME_NOT_MEASURED, tuple(shortfalls))
    return None


def _declared(runs: pd.DataFrame) -> tuple[list[str], bool]:
    """The claim families a study's runs record (`study.claims`) and whether it is sized to
    test them (`study.sized_for_claims`); the most recent run's declaration counts."""
    families = []
    if not {"study.claims", "study.sized_for_claims"} <= set(runs.columns):
        return [], False
    last = latest_per_run(runs).iloc[-1]  # ordered by end time, as every reader orders runs
    value = last["study.claims"]
    if isinstance(value, str):
        families = [value]
    elif isinstance(value, (list, tuple)):
        families = [str(v) for v in value]
    sized = last["study.sized_for_claims"] is True or str(last["study.sized_for_claims"]) == "True"
    unknown = sorted(set(families) - set(FAMILIES) - {"none"})
    if unknown:
        raise ValueError(
            f"study.claims names unknown claim families {unknown}; known: {sorted(FAMILIES)}"
        )
    return [f for f in families if f != "none"], sized


def check_claims(runs: pd.DataFrame) -> list[Claim]:
    """The claims each study declares, on its finished runs."""
    claims = []
    if runs.empty or "experiment_name" not in runs:
        return claims
    for experiment in runs["experiment_name"].dropna().unique():
        families, sized = _declared(runs[runs["experiment_name"] == experiment])
        finished = finished_runs(runs, experiment)
        for family in families:
            if finished.empty:
                claims.append(Claim(experiment, f"{family} claims", LACKS_RUNS, "no finished runs"))
            else:
                chosen = FAMILIES[family]
                for claim in chosen.claims(experiment, finished, withheld(chosen, finished, sized)):
                    claim.family = family
                    claims.append(claim)
    return claims


def _unsized(claims: list[Claim]) -> list[str]:
    return list(dict.fromkeys(c.experiment for c in claims if c.status == NOT_A_TEST))


def claims_markdown(claims: list[Claim]) -> str:
    """claims.md: a table of the claims, then what an unsized study's differences are."""
    lines = ["# The paper's claims on our runs", ""]
    lines += ["| experiment | claim | status | detail |", "|---|---|---|---|"]
    lines += [f"| {c.experiment} | {c.claim} | {c.status} | {c.detail} |" for c in claims]
    lines += [""] + [
        f"{name} is not a test of the claims at this size: its differences are shown, "
        "with no verdict."
        for name in _unsized(claims)
    ]
    families = list(dict.fromkeys(c.family for c in claims if c.family))
    if families:
        lines += [
            "",
            "A verdict needs the protocol and the regime each family's claims were made in:",
        ]
        lines += [
            f"- {name}: protocol {FAMILIES[name].protocol.text()}; regime (last epoch, mean over "
            f"seeds): {FAMILIES[name].regime.text()}."
            for name in families
        ]
    return "\n".join(lines) + "\n"


def claims_text(claims: list[Claim]) -> str:
    """The claims for a terminal, one per line."""
    lines = [f"  [{c.status}] {c.experiment}: {c.claim} ({c.detail})" for c in claims]
    lines += [
        f"  {name} is not a test of the claims at this size: differences only, no verdict."
        for name in _unsized(claims)
    ]
    return "\n".join(lines) if lines else "  (no study among these runs declares claims)"
