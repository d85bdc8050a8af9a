"""The paper's table layout: rows (noise level, training-set size, tau), columns loss x metric.

The row setting is the study's own: its preset's `study` section (configs/experiment/), which
every run's config.yaml records.

A cell averages the distinct seeds of one configuration (`config_id`, results/collect.py); a
seed run twice counts once (the latest finished copy).  Two configurations never share a cell:
when runs that the row and the loss label would put together differ in another setting (say
the noise level of a tau study), that setting joins their column label.
"""

import math
from dataclasses import dataclass

import pandas as pd

from topk_repro.config.identity import is_identity_key
from topk_repro.losses import LOSSES
from topk_repro.results.statistics import mean_interval, paired_difference

METRICS = ("test/top1", "test/top5")


@dataclass(frozen=True)
class Rows:
    """A table's rows: the setting that makes them, its name, and the label of a null value."""

    key: str = "dataset.noise.p"
    name: str = "noise p"
    null_label: str = "none"


STUDY_COLUMNS = ("study.row", "study.row_name", "study.null_row")


def study_rows(runs: pd.DataFrame) -> Rows:
    """The rows of a study's table as its runs' configs record them (`study`), the noise level
    for runs recorded without it.  Runs that disagree: the layout most of them record."""
    if not set(STUDY_COLUMNS) <= set(runs.columns):
        return Rows()
    recorded = runs.loc[:, list(STUDY_COLUMNS)].dropna()
    if recorded.empty:
        return Rows()
    key, name, null_label = recorded.value_counts().index[0]
    return Rows(str(key), str(name), str(null_label))


def is_null(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def loss_label(row: pd.Series, row_key_name: str | None = None) -> str:
    """The loss's column label ('CE', 'SVM k=5 tau=1', 'LML k=5', ...) as its registry entry
    writes it (losses/), leaving out the setting that is the table's row key (tau in a tau
    study)."""
    name = row["loss.name"]
    entry = LOSSES.get(name)
    if entry is None or entry.label is None:
        return str(name)
    values = {
        key[len("loss.") :]: value
        for key, value in row.items()
        if key.startswith("loss.") and key != row_key_name and not is_null(value)
    }
    try:
        return entry.label(values)
    except KeyError:  # a run recorded without a setting its label shows
        return str(name)


def label_of(runs: pd.DataFrame, name: str, **settings) -> str | None:
    """The column label of the runs of loss `name` with these loss settings (None or 0 also
    match a setting a run does not record), or None when there are none: claims and
    baselines select runs by their config, never by display text."""
    chosen = runs["loss.name"] == name
    for key, value in settings.items():
        column = runs.get(f"loss.{key}", pd.Series(None, index=runs.index, dtype=object))
        unset = column.map(is_null)
        chosen &= (column == value) | (unset & (not value))
    labels = runs.loc[chosen, "loss"].unique()
    return str(labels[0]) if len(labels) else None


def baseline_label(runs: pd.DataFrame) -> str | None:
    """The label of plain cross-entropy (no label smoothing): the baseline of every table."""
    return label_of(runs, "ce", label_smoothing=0)


def latest_per_run(finished: pd.DataFrame) -> pd.DataFrame:
    """One row per run identity: the last finished copy (by end time, then folder name)."""
    order = [c for c in ("end_time", "run_dir") if c in finished.columns]
    ordered = finished.sort_values(order, na_position="first")
    return ordered.drop_duplicates("run_id", keep="last")


def _splitting_keys(runs: pd.DataFrame) -> list[str]:
    """Settings that differ between configurations sharing a (row, loss) cell."""
    keys = set()
    candidates = [c for c in runs.columns if "." in c and is_identity_key(c)]
    for _, cell in runs.groupby(["row", "loss"], sort=False, dropna=False):
        if cell["config_id"].nunique() < 2:
            continue
        for key in candidates:
            if key != "seed" and cell[key].astype(str).nunique() > 1:
                keys.add(key)
    return sorted(keys)


def label_configurations(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` (finished, one experiment) with `row` and `loss` (the column label) added."""
    rows = study_rows(runs)
    values = runs.get(rows.key, pd.Series(None, index=runs.index, dtype=object))
    runs = runs.assign(
        loss=runs.apply(loss_label, axis=1, row_key_name=rows.key),
        row=values.map(lambda v: rows.null_label if is_null(v) else v),
    )
    splitting = _splitting_keys(runs)
    if splitting:
        extra = runs.apply(lambda r: " ".join(f"{k}={r[k]}" for k in splitting), axis=1)
        runs = runs.assign(loss=runs["loss"] + " " + extra)
    return runs


def finished_runs(runs: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """Finished runs of one experiment, one per identity, labelled with row and loss."""
    if runs.empty or "experiment_name" not in runs:
        return pd.DataFrame()
    finished = runs[(runs["experiment_name"] == experiment) & (runs["status"] == "finished")]
    if finished.empty:
        return pd.DataFrame()
    return label_configurations(latest_per_run(finished))


def summarise(runs: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """Tidy table: one line per (row value, loss, metric) with mean, std and seed count."""
    finished = finished_runs(runs, experiment)
    if finished.empty:
        return pd.DataFrame()
    lines = []
    for (row, loss), group in finished.groupby(["row", "loss"], sort=False):
        for metric in METRICS:
            values = group[metric].astype(float)
            interval = mean_interval(values)
            lines.append(
                {
                    "row": row,
                    "loss": loss,
                    "metric": metric,
                    "mean": values.mean(),
                    "std": values.std(ddof=1) if len(values) > 1 else 0.0,
                    "seeds": group["seed"].nunique() if "seed" in group else len(values),
                    "ci_low": interval.low,
                    "ci_high": interval.high,
                }
            )
    return _ordered(pd.DataFrame(lines))


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    order = sorted(table["row"].unique(), key=lambda v: (isinstance(v, str), v))
    table["row"] = pd.Categorical(table["row"], categories=order, ordered=True)
    return table.sort_values(["row", "loss", "metric"]).reset_index(drop=True)


def paired_differences(runs: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """Each loss minus cross-entropy (`baseline_label`) at each row, paired by seed: mean
    difference, its 95% interval, the number of paired seeds, and whether the interval
    excludes zero."""
    finished = finished_runs(runs, experiment)
    baseline = None if finished.empty else baseline_label(finished)
    if baseline is None:
        return pd.DataFrame()
    lines = []
    for row, at_row in finished.groupby("row", sort=False):
        reference = at_row[at_row["loss"] == baseline]
        for loss, group in at_row[at_row["loss"] != baseline].groupby("loss", sort=False):
            for metric in METRICS:
                difference = paired_difference(
                    dict(zip(group["seed"], group[metric].astype(float), strict=True)),
                    dict(zip(reference["seed"], reference[metric].astype(float), strict=True)),
                )
                if difference is None:
                    continue
                lines.append(
                    {
                        "row": row,
                        "loss": loss,
                        "baseline": baseline,
                        "metric": metric,
                        "difference": difference.mean,
                        "ci_low": difference.low,
                        "ci_high": difference.high,
                        "seeds": difference.n,
                        "excludes_zero": difference.excludes_zero,
                        "text": difference.text(),
                    }
                )
    return _ordered(pd.DataFrame(lines)) if lines else pd.DataFrame()


def attach_paper(table: pd.DataFrame, paper: pd.DataFrame | None) -> pd.DataFrame:
    """Add the paper's value and our difference where `paper` (row, loss, metric, value) has one."""
    table = table.assign(paper=float("nan"))
    if paper is not None and not paper.empty:
        lookup = {(str(r.row), r.loss, r.metric): r.value for r in paper.itertuples()}
        table["paper"] = [
            lookup.get((str(r.row), r.loss, r.metric), float("nan")) for r in table.itertuples()
        ]
    table["difference"] = table["mean"] - table["paper"]
    return table


def row_label(value) -> str:
    """A row value as tables print it: 0.2 for 0.2 (not 0.200000), 64 for 64.0."""
    return format(value, "g") if isinstance(value, float) else str(value)


def pivot_text(table: pd.DataFrame) -> pd.DataFrame:
    """Human-readable pivot: rows x (loss, metric) cells 'mean ± std (n) [paper]'; a cell of
    one seed has no spread to show: 'mean (n=1)'."""

    def cell(r):
        spread = f" ± {r['std']:.2f}" if r["seeds"] > 1 else ""
        text = f"{r['mean']:.2f}{spread} (n={r['seeds']})"
        if not math.isnan(r["paper"]):
            text += f" [paper {r['paper']:.2f}, Δ {r['difference']:+.2f}]"
        return text

    cells = table.assign(cell=table.apply(cell, axis=1), metric=table["metric"].str[5:])
    return cells.pivot(index="row", columns=["loss", "metric"], values="cell")


def differences_pivot(differences: pd.DataFrame) -> pd.DataFrame:
    """Rows x (loss, metric) cells '+1.23 [0.45, 2.01], 3 seeds', starred when the interval
    excludes zero."""
    cells = differences.assign(
        cell=differences["text"] + differences["excludes_zero"].map({True: " *", False: ""}),
        metric=differences["metric"].str[5:],
    )
    return cells.pivot(index="row", columns=["loss", "metric"], values="cell")


def markdown(pivot: pd.DataFrame) -> str:
    """A pivot table as a GitHub markdown table (column levels joined by a space)."""
    columns = [" ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in pivot.columns]
    index_names = [str(name or "") for name in pivot.index.names]
    lines = [
        "| " + " | ".join([*index_names, *columns]) + " |",
        "|" + "---|" * (len(columns) + len(index_names)),
    ]
    for index, values in pivot.iterrows():
        labels = [str(i) for i in index] if isinstance(index, tuple) else [str(index)]
        cells = ("" if pd.isna(v) else str(v) for v in values)
        lines.append("| " + " | ".join([*labels, *cells]) + " |")
    return "\n".join(lines)
