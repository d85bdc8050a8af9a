"""The paper's claims that runs can test, each stated with its evidence and uncertainty.

From the paper (Table 1 caption) and secondary summaries (see shared paper facts):
- CIFAR-100 with noise (p > 0): L_{5,1} beats CE on top-1 and top-5;
- the gap grows with the noise level;
- with clean labels (p = 0) CE beats L_{5,1} (top-1);
- ImageNet: the smooth top-5 loss beats CE (top-5) on every reduced subset, not on the full set.

Every comparison is a difference paired by seed, reported as "+x.x [a, b], n seeds" (95% t
interval, results/statistics.py).  A claim holds when every interval it rests on lies on its
side of zero, fails when one lies on the other side, and is "unclear" when an interval straddles
zero; with one seed there is no interval and the sign of the point estimate decides, said so.
"""

from dataclasses import dataclass

import pandas as pd

from topk_repro.results.layout import baseline_label, finished_runs, label_of
from topk_repro.results.statistics import Interval, paired_difference

NOISE_EXPERIMENTS = ("cifar100_noise", "demo", "compare_losses", "compare_losses_demo")
REDUCED_SIZES = (64, 128, 320, 640)


@dataclass
class Claim:
    experiment: str
    claim: str
    status: str  # "holds", "fails", "unclear" or "lacks runs"
    detail: str


def _svm_label(runs: pd.DataFrame) -> str | None:
    """The label of the paper's loss, the smooth top-5 SVM (any tau: a study's own choice)."""
    return label_of(runs, "smooth_topk_svm", k=5)


def _per_seed(runs: pd.DataFrame, loss: str, row, metric: str) -> dict:
    part = runs[(runs["loss"] == loss) & (runs["row"] == row)]
    return dict(zip(part["seed"], part[metric].astype(float), strict=True))


def _sign(interval: Interval) -> int:
    """+1 or -1 when the evidence is on one side of zero, 0 when the interval straddles it."""
    if interval.n < 2:
        return 1 if interval.mean > 0 else -1
    return 1 if interval.low > 0 else -1 if interval.high < 0 else 0


def _verdict(intervals: list[Interval]) -> str:
    signs = [_sign(i) for i in intervals]
    if any(s < 0 for s in signs):
        return "fails"
    return "holds" if all(s > 0 for s in signs) else "unclear"


def _difference(runs, ours: str, baseline: str, row, metric: str) -> Interval | None:
    return paired_difference(
        _per_seed(runs, ours, row, metric), _per_seed(runs, baseline, row, metric)
    )


def _noise_claims(experiment: str, runs: pd.DataFrame) -> list[Claim]:
    svm, ce = _svm_label(runs), baseline_label(runs)
    rows = sorted({r for r in runs["row"] if not isinstance(r, str)})
    metrics = ("test/top1", "test/top5")
    both = [r for r in rows if svm and ce and {svm, ce} <= set(runs[runs["row"] == r]["loss"])]
    noisy = [p for p in both if float(p) > 0]
    name = svm or "L_5"
    claims = []

    claim = f"with noise (p > 0), {name} beats CE on top-1 and top-5"
    pairs = [(p, m, _difference(runs, svm, ce, p, m)) for p in noisy for m in metrics]
    pairs = [(p, m, d) for p, m, d in pairs if d is not None]
    if pairs:
        detail = "; ".join(f"p={p} {m[5:]}: {d.text()}" for p, m, d in pairs)
        claims.append(Claim(experiment, claim, _verdict([d for _, _, d in pairs]), detail))
    else:
        claims.append(Claim(experiment, claim, "lacks runs", "need CE and SVM runs with p > 0"))

    claim = "the SVM-CE gap grows with the noise level (largest p vs smallest p > 0)"
    if len(noisy) >= 2:
        low, high = noisy[0], noisy[-1]
        growth = []
        for metric in metrics:
            gaps = {}
            for p in (low, high):
                svm_values, ce_values = (_per_seed(runs, x, p, metric) for x in (svm, ce))
                gaps[p] = {
                    s: svm_values[s] - ce_values[s] for s in set(svm_values) & set(ce_values)
                }
            change = paired_difference(gaps[high], gaps[low])
            if change is not None:
                growth.append((metric, change))
        detail = "; ".join(
            f"{m[5:]}: gap at p={high} minus gap at p={low}: {d.text()}" for m, d in growth
        )
        status = _verdict([d for _, d in growth]) if growth else "lacks runs"
        claims.append(Claim(experiment, claim, status, detail or "no seed run at both levels"))
    else:
        claims.append(Claim(experiment, claim, "lacks runs", "need two noise levels p > 0"))

    claim = "with clean labels (p = 0), CE beats the SVM loss on top-1"
    clean = [p for p in both if float(p) == 0]
    difference = _difference(runs, ce, svm, clean[0], "test/top1") if clean else None
    if difference is not None:
        claims.append(
            Claim(experiment, claim, _verdict([difference]), f"CE - SVM top-1: {difference.text()}")
        )
    else:
        claims.append(Claim(experiment, claim, "lacks runs", "need CE and SVM runs at p = 0"))

    if experiment.startswith("compare_losses") and ce:
        claims += _comparison_claims(experiment, runs, ce, [p for p in rows if float(p) > 0])
    return claims


def _comparison_claims(experiment: str, runs: pd.DataFrame, ce: str, noisy: list) -> list[Claim]:
    """For each other loss: does it beat CE on top-5 with noise?  (Asserted by no paper: the
    comparison's summary, with intervals.)"""
    claims = []
    for loss in sorted(set(runs["loss"]) - {ce}):
        pairs = [(p, _difference(runs, loss, ce, p, "test/top5")) for p in noisy]
        pairs = [(p, d) for p, d in pairs if d is not None]
        claim = f"{loss} beats CE on top-5 with noise (p > 0)"
        if not pairs:
            claims.append(Claim(experiment, claim, "lacks runs", "need CE and this loss at p > 0"))
            continue
        detail = "; ".join(f"p={p}: {d.text()}" for p, d in pairs)
        claims.append(Claim(experiment, claim, _verdict([d for _, d in pairs]), detail))
    return claims


def _imagenet_claims(runs: pd.DataFrame) -> list[Claim]:
    svm, ce = _svm_label(runs), baseline_label(runs)
    key = "test/top5"
    claims = []
    claim = "on reduced ImageNet subsets, the smooth top-5 SVM beats CE on top-5"
    pairs = [(n, _difference(runs, svm, ce, n, key)) for n in REDUCED_SIZES] if svm and ce else []
    pairs = [(n, d) for n, d in pairs if d is not None]
    if pairs:
        detail = "; ".join(f"{n}/class: {d.text()}" for n, d in pairs)
        claims.append(Claim("imagenet_subsets", claim, _verdict([d for _, d in pairs]), detail))
    else:
        claims.append(Claim("imagenet_subsets", claim, "lacks runs", "need reduced-subset runs"))
    claim = "on the full ImageNet training set, the SVM does not beat CE on top-5"
    difference = _difference(runs, ce, svm, "all", key) if svm and ce else None
    if difference is not None:
        # "does not beat" fails only when the SVM is ahead (its whole interval, given one)
        svm_ahead = difference.high < 0 if difference.n >= 2 else difference.mean < 0
        status = "fails" if svm_ahead else "holds"
        claims.append(
            Claim("imagenet_subsets", claim, status, f"CE - SVM top-5: {difference.text()}")
        )
    else:
        claims.append(Claim("imagenet_subsets", claim, "lacks runs", "need full-set runs"))
    return claims


def check_claims(runs: pd.DataFrame) -> list[Claim]:
    claims = []
    for experiment in (*NOISE_EXPERIMENTS, "imagenet_subsets"):
        finished = finished_runs(runs, experiment)
        if finished.empty:
            if experiment in ("cifar100_noise", "imagenet_subsets"):
                claims.append(
                    Claim(
                        experiment,
                        "paper claims for this experiment",
                        "lacks runs",
                        "no finished runs",
                    )
                )
            continue
        if experiment == "imagenet_subsets":
            claims += _imagenet_claims(finished)
        else:
            claims += _noise_claims(experiment, finished)
    return claims
