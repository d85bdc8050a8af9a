"""Accuracy against the row key (noise level, size, tau) for each loss, top-1 and top-5."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def plot_table(table: pd.DataFrame, title: str, x_label: str, path: Path) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    rows = list(table["row"].cat.categories)
    positions = {row: i for i, row in enumerate(rows)}
    for axis, metric in zip(axes, ("test/top1", "test/top5"), strict=True):
        part = table[table["metric"] == metric]
        for loss, group in part.groupby("loss", sort=False):
            x = [positions[r] for r in group["row"]]
            axis.errorbar(x, group["mean"], yerr=group["std"], marker="o", capsize=3, label=loss)
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
    axes[0].legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
