"""The report of a set of runs: for each study its tables (CSV, Markdown, LaTeX), figures,
differences to CE, diagnostics and search trials, then the paper's claims; `scripts/make_tables.py`
is its command.

`write_report(runs, out_dir, paper_dir)` writes <out_dir>/runs.csv (one row per run) and, for each
experiment with finished runs, <out_dir>/<experiment>.{csv,md,tex,png,pdf} in the paper's layout,
<experiment>_vs_ce.*, _memorisation.*, _topk.*, _search.* where they apply, and claims.md.
"""

from pathlib import Path

import pandas as pd

from topk_repro.config.identity import is_identity_key
from topk_repro.results.claims import check_claims, claims_markdown, claims_text
from topk_repro.results.diagnostics import (
    final_memorisation,
    memorisation_curves,
    plot_memorisation,
    plot_topk,
    run_diagnostics,
    topk_curves,
)
from topk_repro.results.layout import (
    Rows,
    attach_paper,
    differences_pivot,
    finished_runs,
    markdown,
    paired_differences,
    pivot_text,
    row_label,
    study_rows,
    summarise,
)
from topk_repro.results.plot import plot_table

SYNTHETIC_BANNER = "NOT OFFICIAL DATA (synthetic or fixture): not a CIFAR-100/ImageNet result"


def read_paper(paper_dir: Path, experiment: str) -> pd.DataFrame | None:
    path = paper_dir / f"{experiment}.csv"
    if not path.is_file():
        return None
    paper = pd.read_csv(path, comment="#", dtype={"row": str})
    return paper.dropna(subset=["value"])


def latex_table(pivot: pd.DataFrame, row_name: str, caption: str, experiment: str) -> str:
    """The pivot as a LaTeX table for a paper: booktabs rules, the row setting named in the
    header, row labels as numbers are written (0.2, not 0.200000), a caption and a label."""
    pivot = pivot.rename(index=row_label)
    pivot.index.name = row_name
    text = pivot.to_latex(escape=True, caption=caption, label=f"tab:{experiment}", position="t")
    return text.replace("±", "$\\pm$").replace("Δ", "$\\Delta$")


def write_experiment(runs: pd.DataFrame, experiment: str, out_dir: Path, paper_dir: Path) -> None:
    summary = summarise(runs, experiment)
    if summary.empty:  # every run failed, was stopped or has not finished: no table to write
        statuses = runs.loc[runs["experiment_name"] == experiment, "status"].value_counts()
        counts = ", ".join(f"{count} {status}" for status, count in statuses.items())
        print(f"\n{experiment}: no finished run yet ({counts}); no table")
        write_search(runs, experiment, out_dir)
        return
    table = attach_paper(summary, read_paper(paper_dir, experiment))
    rows = runs[runs["experiment_name"] == experiment]
    official = bool(rows["official_data"].eq(True).all())
    rows_of_table = study_rows(rows)
    banner = "" if official else SYNTHETIC_BANNER
    table.assign(official_data=official).to_csv(out_dir / f"{experiment}.csv", index=False)
    pivot = pivot_text(table)
    header = f"# {experiment}: test accuracy (%) of the best-validation-top-5 checkpoint\n\n"
    if banner:
        header += f"**{banner}**\n\n"
    text = (
        header
        + f"Rows: {rows_of_table.name} ({rows_of_table.key}). Cells: mean ± std over seeds (n)\n\n"
    )
    (out_dir / f"{experiment}.md").write_text(text + markdown(pivot) + "\n")
    name = experiment.replace("_", r"\_")
    caption = (
        f"{name}: test accuracy (\\%) of the best-validation-top-5 checkpoint, mean "
        f"$\\pm$ std over seeds (n)"
        + ("; NOT official data (synthetic or fixture)" if banner else "")
    )
    (out_dir / f"{experiment}.tex").write_text(
        (f"% {banner}\n" if banner else "")
        + latex_table(pivot, rows_of_table.name, caption, experiment)
    )
    title = f"{experiment} ({'official data' if official else banner})"
    finished = finished_runs(runs, experiment)
    plot_table(table, title, rows_of_table.name, out_dir / f"{experiment}.png", seeds=finished)
    print(f"\n{text}{pivot.to_string()}")
    write_differences(runs, experiment, out_dir, header, rows_of_table)
    write_diagnostics(finished, experiment, out_dir, title, rows_of_table)
    write_search(runs, experiment, out_dir)


def searched_settings(trials: pd.DataFrame) -> list[str]:
    """The settings a search varied: the identity keys whose value differs between its trials
    (the seed aside), read from the trials' recorded configs."""
    keys = [c for c in trials.columns if "." in c and is_identity_key(c)]
    varied = [k for k in keys if trials[k].astype(str).nunique() > 1]
    return sorted(varied) or keys[:1]


def write_search(runs: pd.DataFrame, experiment: str, out_dir: Path) -> None:
    """<experiment>_search.{csv,md}: a search's trials, the finished ones best first by the
    metric it maximised (a validation metric; the test columns are reported, never used to
    choose), then the others (a diverged trial is a normal outcome of a search) with their
    status."""
    trials = runs[runs["experiment_name"] == experiment]
    if "study.optimized_metric" not in trials.columns:
        return
    metric = trials["study.optimized_metric"].dropna()
    if metric.empty:
        return
    metric = str(metric.iloc[0])
    searched = searched_settings(trials)
    columns = [*searched, "seed", "status", metric, "test/top1", "test/top5", "run_dir"]
    finished = trials["status"].eq("finished")
    trials = (
        trials.assign(finished=finished)
        .sort_values(["finished", metric], ascending=False)
        .reindex(columns=columns)
    )
    trials.to_csv(out_dir / f"{experiment}_search.csv", index=False)
    unfinished = int((~finished).sum())
    text = (
        f"# {experiment}: the search's {len(trials)} trials ({unfinished} not finished), "
        f"best first by {metric} (chosen on validation; test shown, not used to choose)\n\n"
    )
    shown = trials.drop(columns="run_dir").set_index(searched[0]).round(4)
    (out_dir / f"{experiment}_search.md").write_text(text + markdown(shown) + "\n")
    print(f"\n{text}{shown.to_string()}")


def write_diagnostics(
    finished: pd.DataFrame, experiment: str, out_dir: Path, title: str, rows: Rows
) -> None:
    """<experiment>_memorisation.{csv,md,png,pdf} and <experiment>_topk.{csv,md,png,pdf}:
    why a loss resists noise (engine/diagnostics.py), where the runs recorded it."""
    memorisation = memorisation_curves(finished)
    if not memorisation.empty:
        memorisation.to_csv(out_dir / f"{experiment}_memorisation.csv", index=False)
        plot_memorisation(
            memorisation, title, rows.name, out_dir / f"{experiment}_memorisation.png"
        )
        last = final_memorisation(memorisation)
        text = (
            f"# {experiment}: memorisation at the last epoch (% of the probed training images)\n\n"
            "Cells: mean [95% t interval, clipped to 0..100] over seeds (n). "
            "`memo/changed/*`: images whose label "
            "the noise changed (noisy: the model predicts the noisy label; clean: the true one); "
            "`memo/unchanged/*`: the others. Curves: "
            f"{experiment}_memorisation.png\n\n"
        )
        (out_dir / f"{experiment}_memorisation.md").write_text(text + markdown(last) + "\n")
        print(f"\n{text}{last.to_string()}")
    topk = topk_curves(finished)
    if not topk.empty:
        topk.to_csv(out_dir / f"{experiment}_topk.csv", index=False)
        plot_topk(topk, title, rows.name, out_dir / f"{experiment}_topk.png")
        cells = topk.assign(
            cell=topk["mean"].map("{:.2f}".format), row=topk["row"].map(row_label)
        ).pivot(index=["row", "loss"], columns="k", values="cell")
        text = (
            f"# {experiment}: test top-k accuracy (%) of the selected model, mean over seeds\n\n"
            + markdown(cells)
            + "\n"
        )
        diagnostics = run_diagnostics(finished)
        if not diagnostics.empty:
            text += (
                "\nPer run (mean [95% t interval, clipped to 0..100] over seeds): the share of "
                "the top-5 "
                "predictions inside the true label's noise group, and the worst class's "
                "accuracy:\n\n" + markdown(diagnostics) + "\n"
            )
        (out_dir / f"{experiment}_topk.md").write_text(text)


def write_differences(
    runs: pd.DataFrame, experiment: str, out_dir: Path, header: str, rows: Rows
) -> None:
    """<experiment>_vs_ce.{csv,md}: each loss minus CE, paired by seed, with 95% intervals."""
    differences = paired_differences(runs, experiment)
    if differences.empty:
        return
    differences.to_csv(out_dir / f"{experiment}_vs_ce.csv", index=False)
    pivot = differences_pivot(differences)
    text = (
        header.replace("test accuracy (%)", "difference to CE (percentage points)")
        + f"Rows: {rows.name} ({rows.key}). Cells: mean of (loss - CE) over seeds run with both, "
        "paired by seed (same noise realisation and initialisation), [95% t interval], seed "
        "count; * when the interval excludes zero.\n\n"
    )
    (out_dir / f"{experiment}_vs_ce.md").write_text(text + markdown(pivot) + "\n")
    print(f"\n{text}{pivot.to_string()}")


def write_report(runs: pd.DataFrame, out_dir: Path, paper_dir: Path, log=None) -> None:
    """Every table, figure and the claims check of `runs` under `out_dir`; `log(experiment)`,
    when given, is called after each experiment's files are written (the W&B export)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out_dir / "runs.csv", index=False)
    print(f"{len(runs)} runs -> {out_dir / 'runs.csv'}")
    for experiment in runs["experiment_name"].dropna().unique():
        write_experiment(runs, experiment, out_dir, paper_dir)
        if log is not None:
            log(experiment)
    claims = check_claims(runs)
    (out_dir / "claims.md").write_text(claims_markdown(claims))
    print("\nThe paper's claims on these runs:")
    print(claims_text(claims))
