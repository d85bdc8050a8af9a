"""Accuracy against the row key (noise level, size, tau) for each loss, top-1 and top-5: a line
per loss through the mean over seeds, a shaded band for its 95% interval (two or more seeds),
and the paper's values dashed where known."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def plot_table(table: pd.DataFrame, title: str, x_label: str, path: Path) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    rows = list(table["row"].cat.categories)
    positions = {row: i for i, row in enumerate(rows)}
    for axis, metric in zip(axes, ("test/top1", "test/top5"), strict=True):
        part = table[table["metric"] == metric]
        for loss, group in part.groupby("loss", sort=False):
            x = [positions[r] for r in group["row"]]
            (line,) = axis.plot(x, group["mean"], marker="o", label=loss)
            band = group[["ci_low", "ci_high"]].notna().all(axis=1)
            if band.any():
                axis.fill_between(
                    [positions[r] for r in group["row"][band]],
                    group["ci_low"][band],
                    group["ci_high"][band],
                    color=line.get_color(),
                    alpha=0.2,
                    linewidth=0,
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
        axis.set_xticks(range(len(rows)), [str(r) for r in rows])
        axis.set_xlabel(x_label)
        axis.set_ylabel(f"{metric[5:]} accuracy (%)")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.suptitle(f"{title}\nmean over seeds, band: 95% interval", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
