"""Accuracy against the row setting (noise level, size, tau) for each loss, top-1 and top-5: a
line per loss through the mean over seeds, each seed's value as a point, the mean's 95% interval
as a shaded band and a bar at each row where there are two or more seeds (clipped to [0, 100]:
accuracies), and the paper's values dashed where known.  Written as PNG (200 dpi) and PDF
(vector), for a paper."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def band(group: pd.DataFrame) -> tuple[list, np.ndarray, np.ndarray]:
    """The rows of `group` (one loss, one metric) with an interval, and its limits clipped to
    accuracy's range [0, 100] (a t interval of few seeds can reach past it)."""
    drawn = group[["ci_low", "ci_high"]].notna().all(axis=1) & (group["seeds"] >= 2)
    low = np.clip(group.loc[drawn, "ci_low"].to_numpy(float), 0, 100)
    high = np.clip(group.loc[drawn, "ci_high"].to_numpy(float), 0, 100)
    return list(group.loc[drawn, "row"]), low, high


def plot_table(
    table: pd.DataFrame,
    title: str,
    x_label: str,
    path: Path,
    seeds: pd.DataFrame | None = None,
) -> None:
    """`table`: summarise()'s rows; `seeds`: the finished runs (row, loss and the metrics), to
    draw each seed's value.  Writes `path` (PNG) and the same figure as PDF beside it."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    rows = list(table["row"].cat.categories)
    positions = {row: i for i, row in enumerate(rows)}
    any_band = False
    for axis, metric in zip(axes, ("test/top1", "test/top5"), strict=True):
        part = table[table["metric"] == metric]
        for loss, group in part.groupby("loss", sort=False, observed=True):
            x = [positions[r] for r in group["row"]]
            (line,) = axis.plot(x, group["mean"], marker="o", label=loss)
            band_rows, low, high = band(group)
            if band_rows:
                any_band = True
                band_x = [positions[r] for r in band_rows]
                axis.fill_between(band_x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
                # the interval at each row as a bar too: a band over one row has no width
                axis.vlines(band_x, low, high, color=line.get_color(), alpha=0.6, linewidth=1.5)
            if seeds is not None and not seeds.empty:
                mine = seeds[seeds["loss"] == loss]
                axis.scatter(
                    [positions[r] for r in mine["row"]],
                    mine[metric].astype(float),
                    color=line.get_color(),
                    s=10,
                    alpha=0.6,
                    linewidths=0,
                )
            if group["paper"].notna().any():
                axis.plot(
                    x,
                    group["paper"],
                    linestyle="--",
                    marker="x",
                    color="grey",
                    label=f"{loss} (paper)",
                )
        axis.set_xticks(
            range(len(rows)), [format(r, "g") if isinstance(r, float) else str(r) for r in rows]
        )
        axis.set_xlabel(x_label)
        axis.set_ylabel(f"{metric[5:]} accuracy (%)")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    shown = "line: mean over seeds, points: seeds" + (
        ", band and bars: 95% interval" if any_band else ""
    )
    figure.suptitle(f"{title}\n{shown}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=200)
    figure.savefig(Path(path).with_suffix(".pdf"))
    plt.close(figure)
