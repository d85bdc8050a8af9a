"""The tau search preset (hparams_search=tau): Optuna trials on the CPU, the metric the training
function returns, and the search's table."""

import json
import subprocess

import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from helpers import ROOT, compose_config, run_checked, script_command, tiny_overrides, train_command
from topk_repro.cli import check_optimized_metric, optimized_value


def test_the_preset_searches_tau_on_a_log_scale_maximising_validation_top5():
    cfg = compose_config(["hparams_search=tau"], return_hydra_config=True)
    assert cfg.study.optimized_metric == "best_val/top5" and cfg.loss.name == "smooth_topk_svm"
    sweeper = cfg.hydra.sweeper
    assert sweeper.direction == "maximize" and sweeper.n_trials == 20
    assert sweeper.params["loss.tau"] == "tag(log, interval(0.01, 10.0))"


@pytest.mark.parametrize("study", ["cifar100_noise", "cifar100_tau", "imagenet_subsets"])
def test_inside_a_study_preset_the_search_explores_only_its_own_space(study):
    """The study's grid (losses, noise levels, tau, data sizes) is not drawn by Optuna."""
    cfg = compose_config(["hparams_search=tau", f"experiment={study}"], return_hydra_config=True)
    assert dict(cfg.hydra.sweeper.params) == {"loss.tau": "tag(log, interval(0.01, 10.0))"}
    assert cfg.loss.name == "smooth_topk_svm" and cfg.experiment_name == "tau_search"


def test_the_training_function_returns_the_validation_metric_never_a_test_one():
    final = {"best_val/top5": 81.5, "test/top5": 90.0}
    search = OmegaConf.create({"study": {"optimized_metric": "best_val/top5"}})
    assert optimized_value(search, final) == 81.5
    assert optimized_value(OmegaConf.create({"study": {}}), final) is None
    with pytest.raises(ValueError, match="may not optimise a test metric"):
        optimized_value(OmegaConf.create({"study": {"optimized_metric": "test/top5"}}), final)
    with pytest.raises(ValueError, match="best_val/top1 is not in final.json"):
        optimized_value(OmegaConf.create({"study": {"optimized_metric": "best_val/top1"}}), final)


def test_a_metric_a_search_cannot_use_stops_it_before_the_first_trial_trains():
    check_optimized_metric(OmegaConf.create({"study": {"optimized_metric": "best_val/top5"}}))
    for metric in ("test/top5", "last/test/top1", "best_val/top3", "val/top5"):
        search = OmegaConf.create({"study": {"optimized_metric": metric}})
        with pytest.raises(SystemExit, match=f"study.optimized_metric={metric}: a search"):
            check_optimized_metric(search)


@pytest.mark.slow
def test_three_trials_one_diverging_then_the_search_table(tmp_path):
    """The README's command (a study preset, one noise level), tiny: a trial whose loss
    diverges (lr 1e9, drawn by the seeded sampler) is recorded as failed; the search goes on
    and its table lists it."""
    overrides = [o for o in tiny_overrides(tmp_path) if not o.startswith("optim.lr=")]
    readme = ("hparams_search=tau", "experiment=cifar100_noise", "dataset.noise.p=0.4")
    search = ("hydra.sweeper.n_trials=3", "optim.lr=choice(0.05,1e9)")
    run_checked(train_command(*readme, *search, *overrides))
    sweep = tmp_path / "runs" / "tau_search"
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    finals = [json.loads(path.read_text()) for path in sorted(sweep.glob("*/final.json"))]
    assert sorted(final["status"] for final in finals) == ["failed", "finished", "finished"]
    out = tmp_path / "tables"
    run_checked(script_command("make_tables.py", "--runs-dir", str(sweep), "--out-dir", str(out)))
    table = pd.read_csv(out / "tau_search_search.csv")
    assert len(table) == 3 and table["loss.tau"].between(0.01, 10).all()
    assert list(table["status"]) == ["finished", "finished", "failed"]
    finished = table[table["status"] == "finished"]
    assert finished["best_val/top5"].is_monotonic_decreasing
    assert results["best_value"] == pytest.approx(table["best_val/top5"].iloc[0])
    assert "(1 not finished)" in (out / "tau_search_search.md").read_text()


@pytest.mark.slow
def test_a_search_whose_every_trial_diverges_says_so(tmp_path):
    overrides = [o for o in tiny_overrides(tmp_path) if not o.startswith("optim.lr=")]
    search = ("hparams_search=tau", "hydra.sweeper.n_trials=2", "optim.lr=1e9")
    result = subprocess.run(
        train_command(*search, *overrides), capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    assert "the search ended with no finished trial: all 2 trials failed or diverged" in (
        result.stderr
    )
    assert "No trials are completed yet" not in result.stderr + result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "setting,message",
    [
        ("hydra.sweeper.n_trials=0", "hydra.sweeper.n_trials=0: a search needs 1 trial or more"),
        ("study.optimized_metric=test/top5", "study.optimized_metric=test/top5: a search"),
    ],
)
def test_a_search_that_cannot_run_stops_before_its_first_trial(tmp_path, setting, message):
    command = train_command("hparams_search=tau", setting, *tiny_overrides(tmp_path))
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 0 and message in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()
