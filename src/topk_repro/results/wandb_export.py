"""A study's aggregates in W&B: its tables and figures logged to a summary run of the study's
group, and a report (built with wandb-workspaces) holding the paper's figures.

The report shows, for one experiment: the test top-1 and top-5 figure against the study's row
setting (its `study.row`: noise p, data size, tau) per loss with intervals (the summary run's
image) and the same as native bar panels per row value; `val/top5` and the memorisation measure
against epoch, grouped by loss and row value; the comparison of all losses, one run set per
loss; and the claims check of the study (results/claims.py), verdicts or the reasons for none.
"""

from pathlib import Path

import pandas as pd

from topk_repro.results.claims import check_claims, claims_markdown
from topk_repro.results.layout import METRICS, row_label, study_rows

SUMMARY_JOB = "summary"


def log_aggregates(out_dir: Path, experiment: str, project: str, entity: str | None, mode: str):
    """Log <out_dir>/<experiment>*.csv as W&B tables and <experiment>*.png as images to one run
    (job type `summary`, group `experiment`); returns the run's path."""
    import wandb

    run = wandb.init(
        project=project,
        entity=entity,
        mode=mode,
        dir=str(out_dir),
        group=experiment,
        job_type=SUMMARY_JOB,
        name=f"{experiment}-summary",
        config={"experiment_name": experiment, "summary_of": experiment},
        settings=wandb.Settings(silent=True, console="off"),
        reinit="finish_previous",
    )
    logged = {}
    for path in sorted(out_dir.glob(f"{experiment}*.csv")):
        logged[f"table/{path.stem}"] = wandb.Table(dataframe=pd.read_csv(path))
    for path in sorted(out_dir.glob(f"{experiment}*.png")):
        logged[f"figure/{path.stem}"] = wandb.Image(str(path))
    run.log(logged)
    path = run.path
    run.finish()
    print(f"W&B: {len(logged)} tables and figures of {experiment} -> run {path} ({mode})")
    return path


def _quoted(value) -> str:
    """A value as a W&B filter expression writes it ('text', 0.4)."""
    value = value.item() if hasattr(value, "item") else value  # numpy scalars
    return f"'{value}'" if isinstance(value, str) else repr(value)


def build_report(
    runs: pd.DataFrame, experiment: str, entity: str, project: str, online: bool = False
):
    """The report of one experiment from its runs (collect_runs rows: the losses and row values
    it shows are the runs' own).  Offline, its run sets name no project (they take the report's
    own): naming one makes wandb-workspaces look the project up on the server."""
    import wandb_workspaces.reports.v2 as wr

    where = {"entity": entity, "project": project} if online else {}
    chosen = runs[runs["experiment_name"] == experiment]
    losses = sorted(chosen["loss.name"].dropna().unique())
    layout = study_rows(chosen)  # the study's own rows: noise level, data size, tau, ...
    row_key, row_name = layout.key, layout.name
    rows = sorted(chosen[row_key].dropna().unique()) if row_key in chosen else []
    base = f"Config('experiment_name') = '{experiment}'"

    def runset(name: str, condition: str = "", groupby=()):
        filters = f"{base} and {condition}" if condition else base
        return wr.Runset(**where, name=name, filters=filters, groupby=list(groupby))

    summary = wr.Runset(**where, name="summary", filters=f"Config('summary_of') = '{experiment}'")
    figures = [
        wr.MediaBrowser(title=title, media_keys=[f"figure/{experiment}{suffix}"])
        for title, suffix in (
            (f"test top-1 and top-5 against {row_name}, mean and 95% interval", ""),
            ("memorisation against epoch", "_memorisation"),
            ("test top-k against k", "_topk"),
        )
    ]
    per_row = [
        wr.PanelGrid(
            runsets=[
                runset(f"{row_name} {row_label(row)}", f"Config('{row_key}') = {_quoted(row)}")
            ],
            panels=[
                wr.BarPlot(
                    title=f"{metric} at {row_name} {row_label(row)}, by loss (mean ± stderr)",
                    metrics=[wr.SummaryMetric(metric)],
                    groupby=wr.Config("loss.name"),
                    groupby_aggfunc="mean",
                    groupby_rangefunc="stderr",
                )
                for metric in METRICS
            ],
        )
        for row in rows
    ]
    curves = wr.PanelGrid(
        runsets=[runset("all runs", groupby=["config.loss.name", f"config.{row_key}"])],
        panels=[
            wr.LinePlot(
                title=f"{metric} against epoch, by loss and {row_name}",
                x="epoch",
                y=[metric],
                groupby_aggfunc="mean",
                groupby_rangefunc="stderr",
            )
            for metric in ("val/top5", "memo/changed/noisy_top1")
        ],
    )
    comparison = wr.PanelGrid(
        runsets=[runset(loss, f"Config('loss.name') = {_quoted(loss)}") for loss in losses],
        panels=[
            wr.BarPlot(
                title=f"{metric}: every loss",
                metrics=[wr.SummaryMetric(metric)],
                groupby_aggfunc="mean",
                groupby_rangefunc="stderr",
            )
            for metric in METRICS
        ],
    )
    blocks = [
        wr.H1(f"{experiment}: test accuracy against {row_name}"),
        wr.P(
            "Figures of `make tables` (mean over seeds, 95% t interval), logged by its summary run."
        ),
        wr.PanelGrid(runsets=[summary], panels=figures),
        *per_row,
        wr.H1("Validation top-5 and memorisation against epoch"),
        curves,
        wr.H1("All losses compared"),
        comparison,
    ]
    claims = check_claims(chosen)
    if claims:
        blocks += [wr.H1("The paper's claims"), wr.MarkdownBlock(text=claims_markdown(claims))]
    return wr.Report(
        entity=entity,
        project=project,
        title=f"{experiment}: smooth top-k SVM and the other losses",
        description=f"scripts/wandb_report.py, from {len(chosen)} runs of {', '.join(losses)}",
        blocks=blocks,
    )


def report_spec(report) -> str:
    """The report's spec as W&B stores it (JSON), validated by parsing it back."""
    from wandb_workspaces.reports.v2 import internal

    model = report._to_model()
    text = model.spec.model_dump_json(by_alias=True, exclude_none=True)
    internal.Spec.model_validate_json(text)
    return text
