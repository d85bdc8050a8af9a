"""The paper's claims that runs can test, checked on our summaries.

From the paper (Table 1 caption) and secondary summaries (see shared paper facts):
- CIFAR-100 with noise (p > 0): L_{5,1} beats CE on top-1 and top-5;
- the gap grows with the noise level;
- with clean labels (p = 0) CE beats L_{5,1} (top-1);
- ImageNet: the smooth top-5 loss beats CE (top-5) on every reduced subset, not on the full set.
"""

from dataclasses import dataclass

import pandas as pd

from topk_repro.results.layout import summarise

NOISE_EXPERIMENTS = ("cifar100_noise", "demo")
REDUCED_SIZES = (64, 128, 320, 640)


@dataclass
class Claim:
    experiment: str
    claim: str
    status: str  # "holds", "fails" or "lacks runs"
    detail: str


def _means(table: pd.DataFrame, loss: str) -> dict:
    part = table[table["loss"] == loss]
    return {
        (row, metric): value
        for row, metric, value in zip(part["row"], part["metric"], part["mean"], strict=True)
    }


def _svm_label(table: pd.DataFrame) -> str | None:
    labels = [label for label in table["loss"].unique() if label.startswith("SVM k=5")]
    return labels[0] if labels else None


def _noise_claims(experiment: str, table: pd.DataFrame) -> list[Claim]:
    svm_label = _svm_label(table)
    ce = _means(table, "CE") if "CE" in set(table["loss"]) else {}
    svm = _means(table, svm_label) if svm_label else {}
    both = sorted({row for row, _ in ce} & {row for row, _ in svm})
    noisy = [p for p in both if float(p) > 0]
    metrics = ("test/top1", "test/top5")

    def gap(p, metric):
        return svm[(p, metric)] - ce[(p, metric)]

    claims = []
    claim = f"with noise (p > 0), {svm_label or 'L_5'} beats CE on top-1 and top-5"
    if noisy:
        losing = [
            f"p={p} {m[5:]} gap {gap(p, m):+.2f}" for p in noisy for m in metrics if gap(p, m) <= 0
        ]
        claims.append(
            Claim(
                experiment,
                claim,
                "fails" if losing else "holds",
                "; ".join(losing) or f"at p = {', '.join(map(str, noisy))}",
            )
        )
    else:
        claims.append(Claim(experiment, claim, "lacks runs", "need CE and SVM runs with p > 0"))

    claim = "the SVM-CE gap grows with the noise level (largest p vs smallest p > 0)"
    if len(noisy) >= 2:
        low, high = noisy[0], noisy[-1]
        shrinking = [
            f"{m[5:]}: {gap(low, m):+.2f} at p={low} vs {gap(high, m):+.2f} at p={high}"
            for m in metrics
            if gap(high, m) <= gap(low, m)
        ]
        detail = "; ".join(shrinking) or ", ".join(
            f"{m[5:]}: {gap(low, m):+.2f} -> {gap(high, m):+.2f}" for m in metrics
        )
        claims.append(Claim(experiment, claim, "fails" if shrinking else "holds", detail))
    else:
        claims.append(Claim(experiment, claim, "lacks runs", "need two noise levels p > 0"))

    claim = "with clean labels (p = 0), CE beats the SVM loss on top-1"
    clean = [p for p in both if float(p) == 0]
    if clean:
        difference = -gap(clean[0], "test/top1")
        claims.append(
            Claim(
                experiment,
                claim,
                "holds" if difference > 0 else "fails",
                f"CE - SVM top-1 = {difference:+.2f}",
            )
        )
    else:
        claims.append(Claim(experiment, claim, "lacks runs", "need CE and SVM runs at p = 0"))
    return claims


def _imagenet_claims(table: pd.DataFrame) -> list[Claim]:
    svm_label = _svm_label(table)
    ce = _means(table, "CE") if "CE" in set(table["loss"]) else {}
    svm = _means(table, svm_label) if svm_label else {}
    key = "test/top5"
    reduced = [n for n in REDUCED_SIZES if (n, key) in ce and (n, key) in svm]
    claims = []
    claim = "on reduced ImageNet subsets, the smooth top-5 SVM beats CE on top-5"
    if reduced:
        losing = [
            f"{n}/class: {svm[(n, key)] - ce[(n, key)]:+.2f}"
            for n in reduced
            if svm[(n, key)] <= ce[(n, key)]
        ]
        claims.append(
            Claim(
                "imagenet_subsets",
                claim,
                "fails" if losing else "holds",
                "; ".join(losing) or f"at {', '.join(map(str, reduced))} per class",
            )
        )
    else:
        claims.append(Claim("imagenet_subsets", claim, "lacks runs", "need reduced-subset runs"))
    claim = "on the full ImageNet training set, the SVM does not beat CE on top-5"
    if ("all", key) in ce and ("all", key) in svm:
        difference = svm[("all", key)] - ce[("all", key)]
        claims.append(
            Claim(
                "imagenet_subsets",
                claim,
                "holds" if difference <= 0 else "fails",
                f"SVM - CE top-5 = {difference:+.2f}",
            )
        )
    else:
        claims.append(Claim("imagenet_subsets", claim, "lacks runs", "need full-set runs"))
    return claims


def check_claims(runs: pd.DataFrame) -> list[Claim]:
    claims = []
    for experiment in (*NOISE_EXPERIMENTS, "imagenet_subsets"):
        table = summarise(runs, experiment) if not runs.empty else pd.DataFrame()
        if table.empty:
            if experiment != "demo":
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
            claims += _imagenet_claims(table)
        else:
            claims += _noise_claims(experiment, table)
    return claims
