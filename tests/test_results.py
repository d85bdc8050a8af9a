"""Sweeps, tables, plots and the paper's claims."""

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from helpers import (
    ROOT,
    run_checked,
    run_script_here,
    tiny_overrides,
    tiny_sweep_overrides,
    train_command,
)
from topk_repro.results.claims import check_claims
from topk_repro.results.collect import collect_runs, collect_wandb
from topk_repro.results.layout import attach_paper, paired_differences, pivot_text, summarise


def train_multirun(*overrides: str) -> str:
    """Run `src/train.py -m` (a Hydra multirun) with the overrides; its standard output."""
    return run_checked(train_command(*overrides, multirun=True)).stdout


def make_tables(runs_dir: Path, out_dir: Path, paper_dir: Path | None = None) -> str:
    paper = ["--paper-dir", str(paper_dir)] if paper_dir is not None else []
    return run_script_here(
        "make_tables.py", "--runs-dir", str(runs_dir), "--out-dir", str(out_dir), *paper
    )


@pytest.mark.slow
@pytest.mark.xdist_group("tiny_sweep")
def test_tiny_sweep_then_tables_then_rerun_skips_finished(tiny_sweep, tmp_path):
    runs_dir = tiny_sweep / "runs"
    folders = sorted(p.name for p in (runs_dir / "mini").iterdir() if p.is_dir())
    # <readable name>-<digest of the run's identity>
    assert [re.sub(r"-[0-9a-f]{10}$", "", name) for name in folders] == [
        "ce-p0-block-n400-s0",
        "ce-p0.4-block-n400-s0",
        "svm-k5-tau1-a1-p0-block-n400-s0",
        "svm-k5-tau1-a1-p0.4-block-n400-s0",
    ]

    out = tmp_path / "tables"
    make_tables(runs_dir, out)
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 4 and {"test/top1", "test/top5"} <= set(runs.columns)
    table = pd.read_csv(out / "mini.csv")
    assert sorted(table["row"].unique()) == [0.0, 0.4]
    assert sorted(table["loss"].unique()) == ["CE", "SVM k=5 tau=1"]
    assert len(table) == 2 * 2 * 2  # rows x losses x {top1, top5}
    assert "NOT OFFICIAL DATA" in (out / "mini.md").read_text()
    for suffix in ("md", "tex", "png"):
        assert (out / f"mini.{suffix}").stat().st_size > 0

    metrics_before = [(runs_dir / "mini" / f / "metrics.jsonl").read_text() for f in folders]
    assert train_multirun(*tiny_sweep_overrides(tiny_sweep)).count("already finished") == 4
    assert metrics_before == [
        (runs_dir / "mini" / f / "metrics.jsonl").read_text() for f in folders
    ]


# The table layouts the presets give their runs' configs (configs/experiment/*.yaml, `study`).
NOISE_ROWS = {"row": "dataset.noise.p", "row_name": "noise p", "null_row": "none"}
STUDIES = {
    "cifar100_noise": {**NOISE_ROWS, "claims": ["noise"], "sized_for_claims": True},
    "compare_losses": {**NOISE_ROWS, "claims": ["noise", "comparison"], "sized_for_claims": True},
    "demo": {**NOISE_ROWS, "claims": ["noise"], "sized_for_claims": False},
    "imagenet_subsets": {
        "row": "dataset.train_per_class",
        "row_name": "images per class",
        "null_row": "all",
        "claims": ["data_size"],
        "sized_for_claims": True,
    },
    "cifar100_tau": {
        "row": "loss.tau",
        "row_name": "tau",
        "null_row": "hard",
        "claims": [],
        "sized_for_claims": False,
    },
}


def test_the_presets_record_these_layouts():
    from helpers import compose_config

    for experiment, study in STUDIES.items():
        assert compose_config([f"experiment={experiment}"]).study == study


def fake_run(
    runs_dir: Path,
    experiment: str,
    loss: str,
    top1: float,
    top5: float,
    *,
    p: float = 0.0,
    per_class=None,
    seed: int = 0,
    official: bool = True,
    tau: float | None = None,
    name: str | None = None,
    fit: float = 99.0,
    noisy_fit: float = 90.0,
    lr: float | None = None,
) -> Path:
    """A hand-made finished run folder with exactly the files the table builder reads, under
    its study's protocol (Table 2's for imagenet_subsets, Table 1's otherwise) and in its regime
    unless told: `fit` is the last epoch's fit of the training labels (top-1 and top-5),
    `noisy_fit` that of the changed labels when p > 0."""
    folder = runs_dir / experiment / (name or f"{loss}-{p}-{per_class}-{seed}-{tau}")
    folder.mkdir(parents=True)
    table_2 = experiment == "imagenet_subsets"
    if tau is None:
        tau = 0.1 if table_2 else 1.0
    loss_config = (
        {"name": loss, "k": 5, "tau": tau, "alpha": 1.0}
        if loss == "smooth_topk_svm"
        else {"name": loss}
    )
    if loss in ("hard_topk_svm", "lml"):
        loss_config["k"] = 5
    svm_optimiser = table_2 and loss != "ce"
    config = {
        "experiment_name": experiment,
        "seed": seed,
        "loss": loss_config,
        "optim": {
            "lr": lr or (1.0 if svm_optimiser else 0.1),
            "weight_decay": 2.5e-5 if svm_optimiser else 1.0e-4,
        },
        "dataset": {"noise": {"p": p}, "train_per_class": per_class},
        "study": STUDIES.get(experiment, STUDIES["cifar100_noise"]),
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    last_epoch = {"epoch": 1, "memo/unchanged/top1": fit, "memo/unchanged/top5": fit}
    if p > 0:
        last_epoch["memo/changed/noisy_top1"] = noisy_fit
    (folder / "metrics.jsonl").write_text(json.dumps(last_epoch) + "\n")
    (folder / "run.json").write_text(json.dumps({"dataset": {"official": official}}))
    (folder / "final.json").write_text(
        json.dumps({"status": "finished", "test/top1": top1, "test/top5": top5})
    )
    return folder


SEED_JITTER = (0.0, 0.5, -0.4)  # per-seed offsets shared by both losses of a seed


def fake_seeds(runs_dir, experiment, loss, top1, top5, seeds=3, spread=(0.0, 0.3, -0.2), **kw):
    """`seeds` hand-made runs of one configuration; seed s adds SEED_JITTER[s] to both metrics
    and spread[s] to top-5 (so paired differences vary a little from seed to seed)."""
    for seed in range(seeds):
        shift = SEED_JITTER[seed]
        fake_run(
            runs_dir, experiment, loss, top1 + shift, top5 + shift + spread[seed], seed=seed, **kw
        )


def test_claims_on_hand_made_runs(tmp_path):
    # CIFAR: SVM wins with noise, by more at p = 0.8 than at p = 0.2; CE wins when clean.
    for p, ce, svm in (
        (0.0, (70, 90), (68, 89)),
        (0.2, (60, 85), (62, 87)),
        (0.8, (20, 40), (30, 55)),
    ):
        fake_seeds(tmp_path, "cifar100_noise", "ce", *ce, p=p, spread=(0, 0, 0))
        fake_seeds(tmp_path, "cifar100_noise", "smooth_topk_svm", *svm, p=p)
    # ImageNet: SVM wins on a reduced subset but not on the full set.
    fake_seeds(tmp_path, "imagenet_subsets", "ce", 30, 55, per_class=64, spread=(0, 0, 0))
    fake_seeds(tmp_path, "imagenet_subsets", "smooth_topk_svm", 31, 58, per_class=64)
    fake_seeds(tmp_path, "imagenet_subsets", "ce", 70, 89, per_class=None, spread=(0, 0, 0))
    fake_seeds(tmp_path, "imagenet_subsets", "smooth_topk_svm", 69, 88, per_class=None)
    claims = check_claims(collect_runs(tmp_path))
    assert {c.status for c in claims} == {"holds"}, claims
    assert len(claims) == 5 and all("3 seeds" in c.detail for c in claims)

    # Now break one: CE wins at p = 0.2 on top-5, on every seed.
    for seed in range(3):
        (
            tmp_path / "cifar100_noise" / f"smooth_topk_svm-0.2-None-{seed}-None" / "final.json"
        ).write_text(json.dumps({"status": "finished", "test/top1": 62, "test/top5": 80 + seed}))
    claims = check_claims(collect_runs(tmp_path))
    failing = [c for c in claims if c.status == "fails"]
    assert len(failing) == 1 and "p=0.2 top5" in failing[0].detail


def test_one_seed_gives_a_direction_never_a_verdict(tmp_path):
    for p, ce, svm in (
        (0.0, (70, 90), (60, 80)),
        (0.4, (40, 60), (50, 75)),
        (0.8, (10, 20), (5, 9)),
    ):
        fake_run(tmp_path, "cifar100_noise", "ce", *ce, p=p)
        fake_run(tmp_path, "cifar100_noise", "smooth_topk_svm", *svm, p=p)
    claims = check_claims(collect_runs(tmp_path))
    assert len(claims) == 3
    assert {c.status for c in claims} == {"1 seed: direction only"}
    assert all("1 seed: no interval" in c.detail for c in claims)


def test_an_interval_across_zero_is_unclear(tmp_path):
    # SVM - CE on top-5 at p = 0.4 over 3 seeds: +3, -1, +1 (the interval straddles 0).
    fake_seeds(tmp_path, "cifar100_noise", "ce", 70, 90, p=0.0)
    fake_seeds(tmp_path, "cifar100_noise", "smooth_topk_svm", 68, 89, p=0.0)
    for seed, (ce5, svm5) in enumerate(((60, 63), (62, 61), (61, 62))):
        fake_run(tmp_path, "cifar100_noise", "ce", 40, ce5, p=0.4, seed=seed)
        fake_run(tmp_path, "cifar100_noise", "smooth_topk_svm", 45 + seed, svm5, p=0.4, seed=seed)
    (claim,) = [c for c in check_claims(collect_runs(tmp_path)) if "beats CE" in c.claim]
    assert claim.status == "unclear"
    assert "p=0.4 top5: +1.00 [" in claim.detail and "3 seeds" in claim.detail


def test_a_study_not_sized_for_the_claims_reports_differences_without_verdict(tmp_path):
    for p in (0.0, 0.4, 0.8):
        fake_seeds(tmp_path, "demo", "ce", 50 - 40 * p, 80 - 40 * p, p=p, spread=(0, 0, 0))
        fake_seeds(tmp_path, "demo", "smooth_topk_svm", 50 - 30 * p, 80 - 20 * p, p=p)
    claims = check_claims(collect_runs(tmp_path))
    assert len(claims) == 3
    assert {c.status for c in claims} == {"not a test at this size"}
    assert "p=0.8 top5: +16.03 [" in claims[0].detail

    out = tmp_path / "tables"
    make_tables(tmp_path, out)
    text = (out / "claims.md").read_text()
    assert "holds" not in text and "fails" not in text
    assert "demo is not a test of the claims at this size" in text


def test_a_study_gets_the_claims_its_preset_declares(tmp_path):
    # Two studies of any name: one declares the noise claims, the other declares none.
    for experiment in ("my_noise_study", "my_other_study"):
        for p in (0.0, 0.4):
            fake_seeds(tmp_path, experiment, "ce", 50, 70, p=p, spread=(0, 0, 0))
            fake_seeds(tmp_path, experiment, "smooth_topk_svm", 52, 75, p=p)
    for config in tmp_path.glob("*/*/config.yaml"):
        values = yaml.safe_load(config.read_text())
        declared = ["noise"] if "my_noise_study" in str(config) else []
        values["study"].update(claims=declared, sized_for_claims=True)
        config.write_text(yaml.safe_dump(values))
    claims = check_claims(collect_runs(tmp_path))
    assert {c.experiment for c in claims} == {"my_noise_study"} and len(claims) == 3
    assert claims[0].status == "holds"


def test_a_study_naming_an_unknown_claim_family_is_refused(tmp_path):
    folder = fake_run(tmp_path, "cifar100_noise", "ce", 50, 70)
    values = yaml.safe_load((folder / "config.yaml").read_text())
    values["study"]["claims"] = ["nosie"]
    (folder / "config.yaml").write_text(yaml.safe_dump(values))
    with pytest.raises(ValueError, match=r"study.claims names unknown claim families \['nosie'\]"):
        check_claims(collect_runs(tmp_path))


def test_claims_lacking_runs_are_reported(tmp_path):
    fake_run(tmp_path, "cifar100_noise", "ce", 70, 90, p=0.0)
    claims = check_claims(collect_runs(tmp_path))
    assert {c.status for c in claims} == {"lacks runs"}


def noise_study(runs_dir: Path, svm_gain: float = 5.0, **svm) -> None:
    """Table 1's study on hand-made runs, 3 seeds at p = 0, 0.4, 0.8: the SVM ahead by
    `svm_gain` with noise (more at 0.8), behind when clean; `svm` changes the SVM's runs."""
    for p in (0.0, 0.4, 0.8):
        gain = -2.0 if p == 0 else svm_gain * (1 + p)
        fake_seeds(runs_dir, "cifar100_noise", "ce", 50, 70, p=p, spread=(0, 0, 0))
        fake_seeds(runs_dir, "cifar100_noise", "smooth_topk_svm", 50 + gain, 70 + gain, p=p, **svm)


def test_a_regime_not_reached_gives_no_verdict_and_names_the_measure(tmp_path):
    noise_study(tmp_path)
    underfit = ((0.0, {"fit": 46.0}), (0.8, {"noisy_fit": 5.8}))
    for seed in range(3):  # CE underfits its clean labels, and fits little of the noise
        for p, records in underfit:
            name = f"underfit-{p}-{seed}"
            fake_run(tmp_path, "cifar100_noise", "ce", 50, 70, p=p, seed=seed, name=name, **records)
    for folder in tmp_path.glob("cifar100_noise/ce-*"):
        if "-0.4-" not in folder.name:
            shutil.rmtree(folder)
    claims = check_claims(collect_runs(tmp_path))
    assert len(claims) == 3
    assert {c.status for c in claims} == {"regime not reached: no verdict"}
    for claim in claims:
        assert "CE fits 46.0% of its training labels (top-1, p 0, mean of 3 seeds), needs 95%" in (
            claim.detail
        )
        assert "CE fits 5.8% of the changed labels (top-1, p 0.8, mean of 3 seeds), needs 50%" in (
            claim.detail
        )
    assert "Differences: p=0.4 top1: +7.00 [" in claims[0].detail  # shown, without a verdict


def test_the_smooth_svm_is_held_to_its_own_k_and_threshold(tmp_path):
    noise_study(tmp_path)
    for folder in tmp_path.glob("cifar100_noise/smooth_topk_svm-0.0-*"):
        metrics = folder / "metrics.jsonl"  # fits 99% at top-1 but 90% at top-5, its k
        metrics.write_text(
            json.dumps({"epoch": 1, "memo/unchanged/top1": 99.0, "memo/unchanged/top5": 90.0})
            + "\n"
        )
    (claim, *_) = check_claims(collect_runs(tmp_path))
    assert claim.status == "regime not reached: no verdict"
    assert "SVM k=5 tau=1 fits 90.0% of its training labels (top-5, p 0" in claim.detail


def test_runs_without_memorisation_records_are_not_measured(tmp_path):
    noise_study(tmp_path)
    for metrics in tmp_path.glob("*/*/metrics.jsonl"):
        metrics.unlink()
    claims = check_claims(collect_runs(tmp_path))
    assert {c.status for c in claims} == {"regime not measured: no verdict"}
    assert "CE at p 0 has no memo/unchanged/top1 at its last epoch" in claims[0].detail


def test_runs_under_another_protocol_give_no_verdict_and_name_the_key(tmp_path):
    noise_study(tmp_path, tau=0.1)  # Table 1 is L_{5,1}
    claims = check_claims(collect_runs(tmp_path))
    assert {c.status for c in claims} == {"other protocol: no verdict"}
    assert "other protocol: loss.tau = 0.1, the paper's 1" in claims[0].detail

    # Table 2 trains the SVM at 10 times CE's learning rate; here it had CE's.
    runs_dir = tmp_path / "imagenet"
    for size in (64, None):
        fake_seeds(runs_dir, "imagenet_subsets", "ce", 30, 55, per_class=size, spread=(0, 0, 0))
        fake_seeds(runs_dir, "imagenet_subsets", "smooth_topk_svm", 31, 58, per_class=size, lr=0.1)
    claims = check_claims(collect_runs(runs_dir))
    assert {c.status for c in claims} == {"other protocol: no verdict"}
    assert "other protocol: optim.lr of SVM k=5 tau=0.1 / CE = 1, the paper's 10" in (
        claims[0].detail
    )


def test_the_wandb_report_carries_the_claims_and_why_they_get_no_verdict(tmp_path):
    pytest.importorskip("wandb_workspaces")
    from topk_repro.results.wandb_export import build_report, report_spec

    noise_study(tmp_path)
    for folder in tmp_path.glob("cifar100_noise/ce-0.0-*"):
        (folder / "metrics.jsonl").write_text(json.dumps({"memo/unchanged/top1": 46.0}) + "\n")
    spec = report_spec(build_report(collect_runs(tmp_path), "cifar100_noise", "someone", "p"))
    assert "regime not reached: no verdict" in spec
    assert "CE fits 46.0% of its training labels (top-1, p 0, mean of 3 seeds), needs 95%" in spec


def test_a_data_size_study_must_fit_its_reduced_sets(tmp_path):
    for size, fit in ((64, 80.0), (None, 60.0)):  # the whole set need not be fitted
        fake_seeds(tmp_path, "imagenet_subsets", "ce", 30, 55, per_class=size, spread=(0, 0, 0))
        fake_seeds(tmp_path, "imagenet_subsets", "smooth_topk_svm", 31, 58, per_class=size, fit=fit)
    claims = check_claims(collect_runs(tmp_path))
    assert {c.status for c in claims} == {"regime not reached: no verdict"}
    assert "fits 80.0% of its training labels (top-5, size 64, mean of 3 seeds), needs 95%" in (
        claims[0].detail
    )
    assert "size all" not in claims[0].detail


def test_tables_with_and_without_paper_values_and_seed_statistics(tmp_path):
    runs_dir = tmp_path / "runs"
    for seed, (ce, svm) in enumerate(((60.0, 62.0), (62.0, 64.0))):
        fake_run(runs_dir, "cifar100_noise", "ce", ce, ce + 20, p=0.2, seed=seed)
        fake_run(runs_dir, "cifar100_noise", "smooth_topk_svm", svm, svm + 20, p=0.2, seed=seed)

    without = make_tables(runs_dir, tmp_path / "plain", paper_dir=tmp_path / "no-paper")
    assert (
        "61.00 ± 1.41 (n=2)" in without
        and "paper" not in (tmp_path / "plain" / "cifar100_noise.md").read_text()
    )
    table = pd.read_csv(tmp_path / "plain" / "cifar100_noise.csv")
    assert table["official_data"].all() and table["paper"].isna().all()

    paper_dir = tmp_path / "paper"
    paper_dir.mkdir()
    (paper_dir / "cifar100_noise.csv").write_text(
        "# comment\nrow,loss,metric,value\n0.2,CE,test/top1,59.5\n0.2,CE,test/top5,\n"
    )
    make_tables(runs_dir, tmp_path / "with", paper_dir=paper_dir)
    text = (tmp_path / "with" / "cifar100_noise.md").read_text()
    assert "[paper 59.50, Δ +1.50]" in text and "NOT OFFICIAL" not in text
    table = pd.read_csv(tmp_path / "with" / "cifar100_noise.csv")
    assert table["paper"].notna().sum() == 1


def test_shipped_paper_files_have_the_layout(tmp_path):
    for name, rows in (("cifar100_noise", 6), ("imagenet_subsets", 5)):
        paper = pd.read_csv(ROOT / "results" / "paper" / f"{name}.csv", comment="#")
        assert list(paper.columns) == ["row", "loss", "metric", "value"]
        assert len(paper) == rows * 2 * 2 and paper["value"].isna().all()


def test_wandb_source_gives_the_same_rows():
    run = SimpleNamespace(
        config={
            "experiment_name": "cifar100_noise",
            "loss": {"name": "ce"},
            "dataset": {"noise": {"p": 0.4}},
            "_wandb": {},
        },
        summary={"test/top1": 50.0, "test/top5": 70.0, "_runtime": 3},
        path=["e", "p", "id1"],
    )
    api = SimpleNamespace(runs=lambda path, filters: [run] if path == "e/p" else [])
    rows = collect_wandb(api, "e", "p")
    assert rows.loc[0, "dataset.noise.p"] == 0.4 and rows.loc[0, "test/top5"] == 70.0
    assert rows.loc[0, "status"] == "finished" and "_runtime" not in rows.columns


def test_plan_prints_the_presets_grid_and_its_cost():
    out = run_script_here(
        "plan_sweep.py",
        "experiment=cifar100_noise",
        "seed=0,1",
        "dataset.noise.mode=block",
        "--epoch-minutes",
        "0.5",
    )
    assert "cifar100_noise: 24 runs x 300 epochs x 0.50 min/epoch" in out
    assert "60.0 GPU-hours" in out
    assert "   loss=smooth_topk_svm dataset.noise.p=1.0 seed=1" in out
    assert "src/train.py -m experiment=cifar100_noise seed=0,1 dataset.noise.mode=block" in out


def test_plan_does_not_guess_an_unmeasured_cost():
    out = run_script_here(
        "plan_sweep.py", "experiment=imagenet_subsets", "paths.runs_dir=/nonexistent"
    )
    assert "imagenet_subsets: 10 runs x 120 epochs; GPU-hours unknown" in out


def test_a_command_line_sweep_replaces_the_presets_for_that_key():
    out = run_script_here(
        "plan_sweep.py", "experiment=cifar100_tau", "loss.tau=0.5,5", "paths.runs_dir=/nonexistent"
    )
    assert "cifar100_tau: 2 runs x 300 epochs" in out


def test_a_dry_run_of_a_make_target_touches_no_file(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("needs make")

    def snapshot() -> dict:
        return {
            path: path.read_bytes()
            for path in sorted((ROOT / "results").rglob("*"))
            if path.is_file()
        }

    before = snapshot()
    result = subprocess.run(
        ["make", "-s", "reproduce-cifar", "DRY_RUN=1", f"DATA={tmp_path / 'data'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "cifar100_noise: 12 runs x 300 epochs" in result.stdout
    assert snapshot() == before and not (tmp_path / "data").exists()
    assert not (ROOT / "runs" / "cifar100_noise").exists()


def test_estimate_cost_measures_the_epoch_time_from_run_folders(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text('{"epoch_time_s": 30}\n{"epoch_time_s": 90}\n')
    out = run_script_here(
        "estimate_cost.py", "--runs", "12", "--epochs", "300", "--from-runs", str(tmp_path)
    )
    assert "12 runs x 300 epochs x 1.00 min/epoch (measured on existing runs) = about 60.0" in out


def test_a_repeated_seed_counts_once_and_unreadable_runs_are_skipped(tmp_path):
    runs_dir = tmp_path / "runs"
    fake_run(runs_dir, "cifar100_noise", "ce", 60.0, 80.0, p=0.2, seed=0)
    fake_run(runs_dir, "cifar100_noise", "ce", 62.0, 82.0, p=0.2, seed=1)
    # A trainer.force copy of seed 1 (same identity): the latest copy stands for seed 1.
    copy = fake_run(runs_dir, "cifar100_noise", "ce", 64.0, 84.0, p=0.2, seed=1, name="copy")
    final = json.loads((copy / "final.json").read_text())
    (copy / "final.json").write_text(json.dumps({**final, "end_time": "2030-01-01T00:00:00"}))
    broken = fake_run(runs_dir, "cifar100_noise", "ce", 0.0, 0.0, p=0.2, seed=2, name="broken")
    (broken / "final.json").write_text('{"status": "fini')
    with pytest.warns(UserWarning, match="broken: final.json is unreadable"):
        runs = collect_runs(runs_dir)
    table = summarise(runs, "cifar100_noise")
    top1 = table[table["metric"] == "test/top1"].iloc[0]
    assert top1["seeds"] == 2 and top1["mean"] == 62.0  # seeds 0 (60) and 1 (latest: 64)


def test_tau_study_table_has_one_cell_per_configuration(tmp_path):
    runs_dir = tmp_path / "runs"
    values = {}
    for p in (0.0, 0.4):
        for tau in (0.1, 1.0):
            top1 = 10 * tau + 100 * p
            values[(p, tau)] = top1
            fake_run(runs_dir, "cifar100_tau", "smooth_topk_svm", top1, top1 + 1, p=p, tau=tau)
        fake_run(runs_dir, "cifar100_tau", "hard_topk_svm", 5.0 + p, 6.0, p=p)
    table = summarise(collect_runs(runs_dir), "cifar100_tau")
    assert set(table["row"].astype(str)) == {"0.1", "1.0", "hard"}
    assert set(table["loss"]) == {
        "SVM k=5 dataset.noise.p=0.0",
        "SVM k=5 dataset.noise.p=0.4",
        "hard top-5 dataset.noise.p=0.0",
        "hard top-5 dataset.noise.p=0.4",
    }
    top1 = table[table["metric"] == "test/top1"]
    assert (top1["seeds"] == 1).all()  # nothing averaged across noise levels
    for (p, tau), value in values.items():
        cell = top1[(top1["row"] == tau) & (top1["loss"] == f"SVM k=5 dataset.noise.p={p}")]
        assert cell["mean"].tolist() == [value]
    hard = top1[top1["row"] == "hard"].set_index("loss")["mean"].to_dict()
    assert hard == {"hard top-5 dataset.noise.p=0.0": 5.0, "hard top-5 dataset.noise.p=0.4": 5.4}
    pivot = pivot_text(attach_paper(table, None))
    # 2 tau rows x 2 noise columns x 2 metrics of SVM cells, and the hard row's 2 x 2
    assert pivot.notna().sum().sum() == 2 * 2 * 2 + 2 * 2


def test_paired_differences_and_their_intervals_on_hand_made_runs(tmp_path):
    runs_dir = tmp_path / "runs"
    fake_seeds(runs_dir, "compare_losses", "ce", 70, 90, p=0.0)  # the regime's clean CE runs
    # CE and LML at p = 0.6 over three seeds; LML - CE per seed on top-5: 2, 3, 4.
    for seed, (ce5, lml5) in enumerate(((50.0, 52.0), (54.0, 57.0), (52.0, 56.0))):
        fake_run(runs_dir, "compare_losses", "ce", 30.0, ce5, p=0.6, seed=seed)
        fake_run(runs_dir, "compare_losses", "lml", 30.0 + seed, lml5, p=0.6, seed=seed)
    fake_run(runs_dir, "compare_losses", "lml", 40.0, 99.0, p=0.6, seed=7)  # no CE partner
    differences = paired_differences(collect_runs(runs_dir), "compare_losses")
    top5 = differences[differences["metric"] == "test/top5"].iloc[0]
    # mean 3, sd 1, t(0.975, 2) = 4.303: 3 +- 4.303 / sqrt(3)
    half = 4.303 / 3**0.5
    assert top5["loss"] == "LML k=5" and top5["seeds"] == 3
    assert top5["difference"] == pytest.approx(3.0)
    assert (top5["ci_low"], top5["ci_high"]) == (pytest.approx(3 - half), pytest.approx(3 + half))
    assert bool(top5["excludes_zero"])
    top1 = differences[differences["metric"] == "test/top1"].iloc[0]  # 0, 1, 2: straddles 0
    assert top1["difference"] == pytest.approx(1.0) and not bool(top1["excludes_zero"])

    out = tmp_path / "tables"
    make_tables(runs_dir, out)
    text = (out / "compare_losses_vs_ce.md").read_text()
    assert f"+3.00 [{3 - half:+.2f}, {3 + half:+.2f}], 3 seeds *" in text
    claims = (out / "claims.md").read_text()
    assert "LML k=5 beats CE on top-5 with noise (p > 0) | holds" in claims
    assert f"p=0.6: +3.00 [{3 - half:+.2f}, {3 + half:+.2f}], 3 seeds" in claims


@pytest.mark.slow
def test_tiny_loss_comparison_builds_its_table_plot_and_claims(tmp_path):
    losses = run_script_here(
        "plan_sweep.py", "experiment=compare_losses_demo", "paths.runs_dir=/nonexistent"
    )
    assert "compare_losses_demo: 54 runs x 4 epochs" in losses  # 9 losses x 2 p x 3 seeds
    train_multirun(
        "experiment=compare_losses_demo",  # the preset's grid: its 9 losses x 2 noise levels
        "seed=0,1",
        # every class needs training labels for the imbalanced margins: 1,000 images
        *tiny_overrides(
            tmp_path,
            "trainer.epochs=1",
            "optim.milestones=[1]",
            "dataset.synthetic.num_train=2000",
            "dataset.train_size=1000",
        ),
    )
    runs_dir = tmp_path / "runs"
    assert len(list((runs_dir / "compare_losses_demo").glob("*/final.json"))) == 9 * 2 * 2

    out = tmp_path / "tables"
    make_tables(runs_dir, out)
    table = pd.read_csv(out / "compare_losses_demo.csv")
    assert table["loss"].nunique() == 9 and (table["seeds"] == 2).all()
    assert table[["ci_low", "ci_high"]].notna().all().all()
    differences = pd.read_csv(out / "compare_losses_demo_vs_ce.csv")
    assert set(differences["loss"]) == set(table["loss"]) - {"CE"}
    assert (differences["seeds"] == 2).all() and len(differences) == 8 * 2 * 2
    assert (out / "compare_losses_demo.png").stat().st_size > 0
    claims = (out / "claims.md").read_text()
    assert "GCE q=0.7 beats CE on top-5 with noise (p > 0)" in claims and "2 seeds" in claims


def test_tables_and_figures_are_fit_for_a_paper(tmp_path):
    runs_dir = tmp_path / "runs"
    # CE with one seed per level; the SVM with two seeds whose top-5 interval would pass 100.
    for p in (0.0, 0.2):
        fake_run(runs_dir, "cifar100_noise", "ce", 50.0, 80.0, p=p)
        for seed, top5 in enumerate((99.0, 100.0)):
            fake_run(runs_dir, "cifar100_noise", "smooth_topk_svm", 48.0, top5, p=p, seed=seed)
    out = tmp_path / "tables"
    make_tables(runs_dir, out)
    markdown_text = (out / "cifar100_noise.md").read_text()
    assert "50.00 (n=1)" in markdown_text and "50.00 ± 0.00" not in markdown_text
    assert "99.50 ± 0.71 (n=2)" in markdown_text
    latex = (out / "cifar100_noise.tex").read_text()
    assert r"\toprule" in latex and r"\midrule" in latex and r"\bottomrule" in latex
    assert (
        r"\caption{cifar100\_noise: test accuracy" in latex
        and r"\label{tab:cifar100_noise}" in latex
    )
    assert "noise p" in latex and "0.2 &" in latex and "0.200000" not in latex
    assert r"$\pm$" in latex and "±" not in latex
    for suffix in ("png", "pdf"):
        assert (out / f"cifar100_noise.{suffix}").stat().st_size > 0

    from topk_repro.results.plot import band

    table = summarise(collect_runs(runs_dir), "cifar100_noise")
    svm5 = table[(table["loss"] == "SVM k=5 tau=1") & (table["metric"] == "test/top5")]
    assert (svm5["ci_high"] > 100).all()  # the t interval of two seeds passes 100 ...
    rows, low, high = band(svm5)
    assert len(rows) == 2 and (high <= 100).all() and (low >= 0).all()  # ... the band does not
    ce1 = table[(table["loss"] == "CE") & (table["metric"] == "test/top1")]
    assert band(ce1)[0] == []  # one seed: no band


def test_tables_of_a_study_whose_runs_all_failed_say_so(tmp_path):
    for seed in range(2):
        folder = fake_run(tmp_path, "cifar100_noise", "ce", 50, 70, seed=seed)
        (folder / "final.json").write_text(json.dumps({"status": "failed"}))
    out = tmp_path / "tables"
    printed = make_tables(tmp_path, out)
    assert "cifar100_noise: no finished run yet (2 failed); no table" in printed
    assert not (out / "cifar100_noise.md").exists()
