"""The diagnostics of a study, from its run folders: memorisation curves (per epoch, from
metrics.jsonl) and the test top-k curve (final.json), as tables and figures.

Each curve is a mean over seeds with its 95% t interval, for each (loss, row) configuration.
"""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from topk_repro.results.layout import row_label  # noqa: E402
from topk_repro.results.statistics import mean_interval  # noqa: E402
from topk_repro.run_files import read_metrics  # noqa: E402

# The memorisation measures shown, and what they mean in a figure's words.
MEMORISATION = {
    "memo/changed/noisy_top1": "noisy label predicted (top-1), images whose label was changed",
    "memo/changed/clean_top5": "clean label within top-5, images whose label was changed",
    "memo/unchanged/top1": "label predicted (top-1), images whose label was kept",
    "memo/unchanged/top5": "label within top-5, images whose label was kept (a top-5 loss's fit)",
}
TOPK_COLUMN = re.compile(r"^test/top(\d+)$")


def _interval_text(low: float, high: float) -> str:
    """' [low, high]' of a percentage's interval, clipped to [0, 100] (a t interval of few
    seeds can reach past it)."""
    return f" [{max(low, 0.0):.1f}, {min(high, 100.0):.1f}]"


def _interval_columns(values: pd.Series) -> dict:
    interval = mean_interval(values.astype(float))
    return {
        "mean": interval.mean,
        "ci_low": interval.low,
        "ci_high": interval.high,
        "seeds": interval.n,
    }


def memorisation_curves(finished: pd.DataFrame) -> pd.DataFrame:
    """One line per (loss, row, epoch, measure): mean over seeds and its interval; empty when
    the runs recorded no memorisation (older runs, data without label noise)."""
    rows = []
    for run in finished.itertuples():
        if str(run.run_dir).startswith("wandb:"):
            continue
        for metrics in read_metrics(Path(run.run_dir) / "metrics.jsonl"):
            for measure in MEMORISATION:
                if metrics.get(measure) is not None:
                    rows.append(
                        {
                            "loss": run.loss,
                            "row": run.row,
                            "seed": run.seed,
                            "epoch": metrics["epoch"],
                            "measure": measure,
                            "value": metrics[measure],
                        }
                    )
    if not rows:
        return pd.DataFrame()
    tidy = pd.DataFrame(rows)
    keys = ["loss", "row", "measure", "epoch"]
    summary = tidy.groupby(keys, sort=False)["value"].apply(_interval_columns).unstack()
    return summary.reset_index().sort_values(keys).reset_index(drop=True)


def final_memorisation(curves: pd.DataFrame) -> pd.DataFrame:
    """The last epoch of each curve: (row, loss) x measure cells 'mean [low, high] (n)'."""
    last = curves[curves["epoch"] == curves.groupby(["loss", "row"])["epoch"].transform("max")]

    def cell(r) -> str:
        spread = _interval_text(r.ci_low, r.ci_high) if r.seeds >= 2 else ""
        return f"{r['mean']:.1f}{spread} (n={int(r.seeds)}, epoch {int(r.epoch)})"

    order = [
        row_label(r) for r in sorted(last["row"].unique(), key=lambda v: (isinstance(v, str), v))
    ]
    last = last.assign(cell=last.apply(cell, axis=1), row=last["row"].map(row_label))
    table = last.pivot(index=["row", "loss"], columns="measure", values="cell")
    return table.reindex(order, level=0)  # rows in the order of their values, not of their text


def fit_by_epoch(
    curves: pd.DataFrame, measure: str = "memo/changed/noisy_top1", shown: int = 6
) -> pd.DataFrame:
    """A compact epoch x (loss, row) table of one memorisation measure, 'mean [low, high]'
    over seeds, at about `shown` evenly spaced epochs (always the last): the terminal's view of
    the memorisation figure."""
    part = curves[curves["measure"] == measure]
    if part.empty:
        return pd.DataFrame()
    epochs = sorted(part["epoch"].unique())
    step = max(1, round(len(epochs) / shown))
    picked = sorted(set(epochs[step - 1 :: step]) | {epochs[-1]})
    part = part[part["epoch"].isin(picked)]

    def cell(r) -> str:
        spread = _interval_text(r.ci_low, r.ci_high) if r.seeds >= 2 else " (1 seed)"
        return f"{r['mean']:.1f}{spread}"

    part = part.assign(
        cell=part.apply(cell, axis=1),
        column=part["loss"] + ", p=" + part["row"].map(row_label),
    )
    return part.pivot(index="epoch", columns="column", values="cell")


def topk_curves(finished: pd.DataFrame) -> pd.DataFrame:
    """One line per (loss, row, k): test top-k accuracy of the selected model, mean over seeds
    and its interval; empty for runs recorded without the curve."""
    columns = {int(m.group(1)): c for c in finished.columns if (m := TOPK_COLUMN.match(c))}
    if len(columns) <= 2:  # only top-1 and top-5: no curve recorded
        return pd.DataFrame()
    lines = []
    for (loss, row), group in finished.groupby(["loss", "row"], sort=False):
        for k in sorted(columns):
            values = group[columns[k]].dropna()
            if len(values):
                lines.append({"loss": loss, "row": row, "k": k, **_interval_columns(values)})
    return pd.DataFrame(lines)


# Test diagnostics recorded once per run (final.json), summarised over seeds.
RUN_DIAGNOSTICS = {
    "test/top5_in_group": "top-5 predictions inside the true label's noise group (%)",
    "test/worst_class_top1": "worst class, top-1 (%)",
    "test/worst_class_top5": "worst class, top-5 (%)",
}


def run_diagnostics(finished: pd.DataFrame) -> pd.DataFrame:
    """(row, loss, groups) x diagnostic cells 'mean [low, high] (n=...)' over seeds, for the
    RUN_DIAGNOSTICS the runs recorded; empty when none did."""
    columns = [c for c in RUN_DIAGNOSTICS if c in finished.columns]
    if not columns or finished[columns].isna().all().all():
        return pd.DataFrame()

    def cell(values: pd.Series) -> str:
        values = values.dropna()
        if values.empty:
            return ""
        summary = _interval_columns(values)
        spread = (
            _interval_text(summary["ci_low"], summary["ci_high"]) if summary["seeds"] >= 2 else ""
        )
        return f"{summary['mean']:.1f}{spread} (n={summary['seeds']})"

    rule = finished.get("test/group_rule", pd.Series("", index=finished.index))
    lines = []
    for (row, loss), group in finished.groupby(["row", "loss"], sort=False):
        groups = ", ".join(sorted(map(str, rule[group.index].dropna().unique())))
        cells = {RUN_DIAGNOSTICS[c]: cell(group[c].astype(float)) for c in columns}
        lines.append({"row": row_label(row), "loss": loss, "groups": groups, **cells})
    return pd.DataFrame(lines).set_index(["row", "loss", "groups"])


def _line_with_band(axis, x, group: pd.DataFrame, label: str, color=None) -> None:
    (line,) = axis.plot(x, group["mean"], label=label, linewidth=1.4, color=color)
    drawn = group["seeds"] >= 2
    if drawn.any():
        axis.fill_between(
            np.asarray(x)[drawn.to_numpy()],
            np.clip(group.loc[drawn, "ci_low"], 0, 100),
            np.clip(group.loc[drawn, "ci_high"], 0, 100),
            color=line.get_color(),
            alpha=0.2,
            linewidth=0,
        )


def _save(figure, path: Path, bottom: float = 0.0) -> None:
    """Save as PNG and PDF; `bottom`: the share of the height kept for a figure legend."""
    figure.tight_layout(rect=(0, bottom, 1, 1))
    figure.savefig(path, dpi=200)
    figure.savefig(Path(path).with_suffix(".pdf"))
    plt.close(figure)


def plot_memorisation(curves: pd.DataFrame, title: str, row_name: str, path: Path) -> None:
    """A panel per measure: the measure against epoch, a line per (loss, row) with its band."""
    measures = [m for m in MEMORISATION if m in set(curves["measure"])]
    figure, axes = plt.subplots(1, len(measures), figsize=(5 * len(measures), 4.4), squeeze=False)
    # one colour per (loss, row) in every panel, and one legend for them all
    lines = sorted(
        set(zip(curves["loss"], curves["row"], strict=True)),
        key=lambda line: (line[0], isinstance(line[1], str), line[1]),
    )
    colours = dict(zip(lines, plt.get_cmap("tab10").colors * 3, strict=False))
    for axis, measure in zip(axes[0], measures, strict=True):
        part = curves[curves["measure"] == measure]
        for (loss, row), group in part.groupby(["loss", "row"], sort=False):
            label = f"{loss}, {row_name} {row_label(row)}"
            _line_with_band(axis, group["epoch"].to_numpy(), group, label, colours[(loss, row)])
        axis.set_title(MEMORISATION[measure], fontsize=8)
        axis.set_xlabel("epoch")
        axis.set_ylabel("% of probed training images")
        axis.set_ylim(0, 100)
        axis.grid(alpha=0.3)
    drawn = {}
    for axis in axes[0]:
        drawn.update(zip(*reversed(axis.get_legend_handles_labels()), strict=True))
    labels = [f"{loss}, {row_name} {row_label(row)}" for loss, row in lines]
    handles = {label: drawn[label] for label in labels if label in drawn}
    figure.legend(
        handles.values(), handles.keys(), loc="lower center", ncol=min(len(handles), 6), fontsize=7
    )

    figure.suptitle(f"{title}\nmemorisation: mean over seeds, band: 95% interval", fontsize=9)
    _save(figure, path, bottom=0.1)


def plot_topk(curves: pd.DataFrame, title: str, row_name: str, path: Path) -> None:
    """Test top-k accuracy against k, a line per (loss, row) with its band."""
    figure, axis = plt.subplots(figsize=(6, 4.2))
    for (loss, row), group in curves.groupby(["loss", "row"], sort=False):
        group = group.sort_values("k")
        _line_with_band(axis, group["k"].to_numpy(), group, f"{loss}, {row_name} {row_label(row)}")
    axis.set_xlabel("k")
    axis.set_ylabel("test top-k accuracy (%)")
    axis.set_xticks(sorted(curves["k"].unique()))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.suptitle(f"{title}\ntop-k curve: mean over seeds, band: 95% interval", fontsize=9)
    _save(figure, path)
