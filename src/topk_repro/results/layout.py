"""The paper's table layout: rows (noise level, training-set size, tau), columns loss x metric."""

import math

import pandas as pd

METRICS = ("test/top1", "test/top5")
ROW_KEYS = {
    "cifar100_noise": ("dataset.noise.p", "noise p"),
    "demo": ("dataset.noise.p", "noise p"),
    "imagenet_subsets": ("dataset.train_per_class", "images per class"),
    "cifar100_tau": ("loss.tau", "tau"),
}


def row_key(experiment: str) -> tuple[str, str]:
    return ROW_KEYS.get(experiment, ("dataset.noise.p", "noise p"))


def loss_label(row: pd.Series) -> str:
    name = row["loss.name"]
    if name == "ce":
        return "CE"
    if name == "hard_topk_svm":
        return f"hard top-{int(row['loss.k'])}"
    return f"SVM k={int(row['loss.k'])} tau={row['loss.tau']:g}"


def row_value(value):
    """Display value of the row key: 'all' for a null training-set size, 'hard' for no tau."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "all"
    return value


def summarise(runs: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """Tidy table: one line per (row value, loss, metric) with mean, std and seed count."""
    key, _ = row_key(experiment)
    finished = runs[(runs["experiment_name"] == experiment) & (runs["status"] == "finished")]
    if finished.empty:
        return pd.DataFrame()
    finished = finished.assign(
        loss=finished.apply(loss_label, axis=1),
        row=finished.get(key, pd.Series(None, index=finished.index)).map(row_value),
    )
    lines = []
    for (row, loss), group in finished.groupby(["row", "loss"], sort=False):
        for metric in METRICS:
            values = group[metric].astype(float)
            lines.append(
                {
                    "row": row,
                    "loss": loss,
                    "metric": metric,
                    "mean": values.mean(),
                    "std": values.std(ddof=1) if len(values) > 1 else 0.0,
                    "seeds": len(values),
                }
            )
    table = pd.DataFrame(lines)
    order = sorted(table["row"].unique(), key=lambda v: (isinstance(v, str), v))
    table["row"] = pd.Categorical(table["row"], categories=order, ordered=True)
    return table.sort_values(["row", "loss", "metric"]).reset_index(drop=True)


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


def pivot_text(table: pd.DataFrame) -> pd.DataFrame:
    """Human-readable pivot: rows x (loss, metric) cells 'mean ± std (n) [paper]'."""

    def cell(r):
        text = f"{r['mean']:.2f} ± {r['std']:.2f} (n={r['seeds']})"
        if not math.isnan(r["paper"]):
            text += f" [paper {r['paper']:.2f}, Δ {r['difference']:+.2f}]"
        return text

    cells = table.assign(cell=table.apply(cell, axis=1), metric=table["metric"].str[5:])
    return cells.pivot(index="row", columns=["loss", "metric"], values="cell")


def markdown(pivot: pd.DataFrame) -> str:
    """A pivot table as a GitHub markdown table (column levels joined by a space)."""
    columns = [" ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in pivot.columns]
    lines = [
        "| " + " | ".join([str(pivot.index.name or ""), *columns]) + " |",
        "|" + "---|" * (len(columns) + 1),
    ]
    for index, values in pivot.iterrows():
        lines.append(
            "| " + " | ".join([str(index), *("" if pd.isna(v) else str(v) for v in values)]) + " |"
        )
    return "\n".join(lines)
