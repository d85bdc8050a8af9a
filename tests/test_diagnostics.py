"""Why a loss resists noise, measured: memorisation counts, the test top-k curve, the group
share, per-class accuracy, checkpoint evaluation, and their tables and figures."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf

from helpers import (
    compose_config,
    folder_contents,
    run_checked,
    run_script_here,
    script_command,
    script_failure_here,
    tiny_overrides,
    write_cifar_fixture,
)
from topk_repro.data.cifar_format import FOLDER
from topk_repro.data.synthetic import NotGeneratedHere
from topk_repro.engine import fit
from topk_repro.engine.diagnostics import MemorisationMeter, TopkDiagnostics, probe_indices
from topk_repro.evaluation import DataMismatch, evaluate_run, load_run, recorded_metrics
from topk_repro.models import build_model


def scores_ranking(rankings: list[list[int]], classes: int = 10) -> torch.Tensor:
    """Scores whose descending order starts with each row's listed classes."""
    scores = torch.zeros(len(rankings), classes)
    for row, ranked in enumerate(rankings):
        for place, label in enumerate(ranked):
            scores[row, label] = 100.0 - place
    return scores


def test_memorisation_counts_on_known_predictions():
    # (clean, noisy) per image, and the model's ranking of classes.
    labels = torch.tensor([[0, 1], [2, 3], [4, 5], [6, 6], [7, 7], [8, 8]])
    rankings = [
        [1, 0, 9, 9, 9],  # changed: noisy at top-1, clean within top-5
        [9, 8, 3, 2, 5],  # changed: noisy and clean within top-5, neither at top-1
        [4, 9, 8, 1, 0],  # changed: clean at top-1, noisy not in top-5
        [6],  # unchanged: top-1
        [0, 1, 7],  # unchanged: top-5 only
        [0, 1, 2, 3, 4],  # unchanged: missed
    ]
    rankings = [r + [c for c in range(10) if c not in r] for r in rankings]
    rankings = [list(dict.fromkeys(r)) for r in rankings]
    meter = MemorisationMeter("cpu")
    meter.update(scores_ranking(rankings[:2]), labels[:2])  # two batches add up
    meter.update(scores_ranking(rankings[2:]), labels[2:])
    result = meter.result()
    assert result["memo/changed_images"] == 3
    assert result["memo/changed/noisy_top1"] == pytest.approx(100 / 3)
    assert result["memo/changed/noisy_top5"] == pytest.approx(200 / 3)
    assert result["memo/changed/clean_top1"] == pytest.approx(100 / 3)
    assert result["memo/changed/clean_top5"] == pytest.approx(100.0)
    assert result["memo/unchanged/top1"] == pytest.approx(100 / 3)
    assert result["memo/unchanged/top5"] == pytest.approx(200 / 3)


def test_memorisation_without_changed_labels_reports_only_the_unchanged():
    meter = MemorisationMeter("cpu")
    meter.update(scores_ranking([[3, 1, 2, 0, 4]]), torch.tensor([[3, 3]]))
    result = meter.result()
    assert result == {
        "memo/changed_images": 0,
        "memo/unchanged/top1": 100.0,
        "memo/unchanged/top5": 100.0,
    }


def test_probe_is_a_fixed_subset():
    assert (probe_indices(100, 500, 0) == np.arange(100)).all()
    first, again = probe_indices(1000, 100, 3), probe_indices(1000, 100, 3)
    assert len(first) == 100 and len(set(first)) == 100 and (first == again).all()
    assert (np.diff(first) > 0).all()


def test_topk_curve_group_share_and_per_class_against_a_direct_computation():
    generator = torch.Generator().manual_seed(0)
    classes, count = 20, 300
    scores = torch.randn(count, classes, generator=generator)
    labels = torch.randint(0, classes, (count,), generator=generator)
    labels[labels == 19] = 18  # class 19 never occurs: its accuracy is undefined
    group_of = np.arange(classes) // 5
    diagnostics = TopkDiagnostics(classes, 10, ("block", group_of), "cpu")
    for part in torch.split(torch.arange(count), 64):
        diagnostics.update(scores[part], labels[part])
    result = diagnostics.result("test")

    order = np.argsort(-scores.numpy(), axis=1)
    truth = labels.numpy()
    for k in range(1, 11):
        expected = 100 * np.mean([truth[i] in order[i, :k] for i in range(count)])
        assert result[f"test/top{k}"] == pytest.approx(expected)
    inside = group_of[order[:, :5]] == group_of[truth][:, None]
    assert result["test/top5_in_group"] == pytest.approx(100 * inside.mean())
    assert result["test/group_rule"] == "block"
    for c in (0, 7, 18):
        members = truth == c
        expected = 100 * np.mean(order[members, 0] == c)
        assert result["test/per_class_top1"][c] == pytest.approx(expected)
    assert result["test/per_class_top1"][19] is None
    defined = [v for v in result["test/per_class_top1"] if v is not None]
    assert result["test/worst_class_top1"] == pytest.approx(min(defined))


@pytest.fixture(scope="module")
def noisy_tiny_run(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("diagnostics")
    cfg = compose_config(
        tiny_overrides(
            tmp_path,
            "dataset.noise.p=0.6",
            "diagnostics.memorisation_images=150",
            "paths.run_dir=" + str(tmp_path / "run"),
        )
    )
    fit.run(cfg, tmp_path / "run")
    return tmp_path / "run"


def test_a_noisy_run_records_memorisation_per_epoch_and_diagnostics_at_test(noisy_tiny_run):
    rows = [
        json.loads(line) for line in (noisy_tiny_run / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 2
    for row in rows:
        assert 0 < row["memo/changed_images"] < 150
        for key in ("memo/changed/noisy_top1", "memo/changed/clean_top5", "memo/unchanged/top1"):
            assert 0.0 <= row[key] <= 100.0
        assert row["memo_time_s"] > 0
    final = json.loads((noisy_tiny_run / "final.json").read_text())
    curve = [final[f"test/top{k}"] for k in range(1, 11)]
    assert curve == sorted(curve) and curve[0] == final["test/top1"]
    assert len(final["test/per_class_top1"]) == 100
    assert final["test/group_rule"] == "block" and 0 <= final["test/top5_in_group"] <= 100


def test_evaluating_the_checkpoints_reproduces_final_json_exactly(noisy_tiny_run):
    final = json.loads((noisy_tiny_run / "final.json").read_text())
    for checkpoint in ("best", "last"):
        run = load_run(noisy_tiny_run, checkpoint)
        recomputed = evaluate_run(run)
        recorded = recorded_metrics(final, checkpoint)
        assert recorded and all(recomputed[key] == value for key, value in recorded.items())
    # The notebook API: the model and its test transform score raw images.
    run = load_run(noisy_tiny_run)
    images = run.data.test.images[:4].permute(0, 2, 3, 1).numpy()  # (4, 32, 32, 3) uint8
    with torch.no_grad():
        scores = run.model(run.test_transform(images))
    assert scores.shape == (4, 100) and torch.isfinite(scores).all()

    done = run_checked(script_command("evaluate.py", str(noisy_tiny_run)))
    assert "DIFFERS" not in done.stdout and "= final.json" in done.stdout


def test_evaluating_on_other_data_is_refused_naming_what_differs(noisy_tiny_run, tmp_path):
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("config.yaml", "run.json", "final.json", "best.pt"):
        (copy / name).write_bytes((noisy_tiny_run / name).read_bytes())
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["dataset"]["noise"]["seed"] = 5  # another noise realisation than the one recorded
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(DataMismatch, match="dataset.noise.seed: 0 -> 5"):
        load_run(copy)
    assert load_run(copy, allow_other_data=True).data_differences


def test_evaluating_with_a_cifar_folder_as_data_root_leaves_it_untouched(noisy_tiny_run, tmp_path):
    """A synthetic run evaluated with --data-root pointing at a user's CIFAR folder."""
    root = tmp_path / "cifar"
    write_cifar_fixture(root, num_train=200, num_test=100)
    before = folder_contents(root / FOLDER)
    with pytest.raises(NotGeneratedHere, match="holds files this project did not generate"):
        load_run(noisy_tiny_run, data_root=str(root))
    assert folder_contents(root / FOLDER) == before


def test_evaluate_compares_the_loss_within_its_stated_tolerance_and_accuracies_exactly(
    noisy_tiny_run, tmp_path
):
    """A loss summed in another order (several processes) differs in its last digits."""
    copy = tmp_path / "run"
    shutil.copytree(noisy_tiny_run, copy)
    final = json.loads((copy / "final.json").read_text())
    final["test/loss"] *= 1 + 1e-7
    (copy / "final.json").write_text(json.dumps(final))
    out = run_script_here("evaluate.py", str(copy))
    assert "the loss within a relative 1e-05" in out and "DIFFERS" not in out
    final["test/top1"] += 0.05  # one image in 2,000 more: a different model
    (copy / "final.json").write_text(json.dumps(final))
    code, _ = script_failure_here("evaluate.py", str(copy))
    assert code == 3


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _bare_state_dict(path: Path) -> None:
    torch.save(torch.load(path, weights_only=True)["model"], path)


def _other_width(path: Path) -> None:
    state = torch.load(path, weights_only=True)
    state["model"] = build_model(OmegaConf.create({"name": "cifar_small", "width": 16}), 100)
    state["model"] = state["model"].state_dict()
    torch.save(state, path)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this ran",))


DAMAGES = {
    "truncated best.pt": ("best.pt", _truncate, "best.pt cannot be read"),
    "empty best.pt": ("best.pt", lambda path: path.write_bytes(b""), "best.pt cannot be read"),
    "bare state dict": ("best.pt", _bare_state_dict, "best.pt is not a checkpoint of this"),
    "other model width": ("best.pt", _other_width, "best.pt does not fit the model that"),
    "code in best.pt": (
        "best.pt",
        lambda path: torch.save({"model": _RunsCode(), "epoch": 1}, path),
        "best.pt cannot be read",
    ),
    "torn final.json": ("final.json", _truncate, "final.json is not valid JSON"),
    "torn config.yaml": (
        "config.yaml",
        lambda path: path.write_text("dataset: {name: [unclosed\n"),
        "config.yaml cannot be read",
    ),
    "no run.json": ("run.json", Path.unlink, "run.json does not exist: the data cannot be"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_evaluate_names_a_damaged_or_foreign_file_of_the_run_folder(
    noisy_tiny_run, tmp_path, damage
):
    name, spoil, message = DAMAGES[damage]
    copy = tmp_path / "run"
    shutil.copytree(noisy_tiny_run, copy)
    spoil(copy / name)
    code, err = script_failure_here("evaluate.py", str(copy))
    assert code == 2 and f"evaluate.py: error: {copy / name}" in err and message in err, err
    assert "Traceback" not in err


def test_evaluate_refuses_an_out_file_in_a_missing_folder_before_any_work(noisy_tiny_run):
    missing = noisy_tiny_run / "no-such-folder" / "metrics.json"
    code, err = script_failure_here("evaluate.py", str(noisy_tiny_run), "--out", str(missing))
    assert code == 2 and f"the folder {missing.parent} does not exist" in err


def test_evaluate_never_writes_into_a_run_folder_or_over_a_file(noisy_tiny_run, tmp_path):
    record = (noisy_tiny_run / "final.json").read_bytes()
    for out, message in (
        (noisy_tiny_run / "final.json", "is a run folder, whose files only training writes"),
        (noisy_tiny_run / "evaluation.json", "is a run folder, whose files only training writes"),
    ):
        code, err = script_failure_here("evaluate.py", str(noisy_tiny_run), "--out", str(out))
        assert code == 2 and message in err, err
    existing = tmp_path / "mine.json"
    existing.write_text("a user's file")
    code, err = script_failure_here("evaluate.py", str(noisy_tiny_run), "--out", str(existing))
    assert code == 2 and "the file exists" in err and existing.read_text() == "a user's file"
    assert (noisy_tiny_run / "final.json").read_bytes() == record


def debug_overrides(tmp_path: Path, *extra: str) -> list[str]:
    """The tiny run's data and model, with the debug preset's own training settings."""
    kept = [
        o
        for o in tiny_overrides(tmp_path)
        if not o.startswith(("trainer.", "optim.", "dataset.train_size", "dataset.val_size"))
    ]
    return [*kept, *extra]


def test_debug_fast_runs_one_short_epoch_without_a_logger(tmp_path):
    cfg = compose_config(debug_overrides(tmp_path, "debug=fast"))
    assert cfg.trainer.epochs == 1 and cfg.logger.name == "none" and cfg.trainer.device == "cpu"
    assert cfg.experiment_name == "debug"
    final = fit.run(cfg, tmp_path / "run")
    assert final["status"] == "finished" and final["epochs_completed"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ce", "smooth_topk_svm"])
def test_debug_overfit_drives_the_training_loss_near_zero(tmp_path, loss):
    cfg = compose_config(debug_overrides(tmp_path, "debug=overfit", f"loss={loss}"))
    assert cfg.dataset.train_size == cfg.trainer.batch_size  # one batch, seen at every step
    fit.run(cfg, tmp_path / "run")
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    first, last = rows[0]["train/loss"], rows[-1]["train/loss"]
    assert first > 2.0 and last < 0.1, (first, last)


def hand_made_run(runs_dir: Path, loss: str, seed: int, memorised: list[float], topk: list[float]):
    """A finished run folder of experiment `study` at p = 0.6 whose metrics.jsonl holds the
    given `memo/changed/noisy_top1` per epoch and whose final.json holds the top-k curve."""
    folder = runs_dir / "study" / f"{loss}-{seed}"
    folder.mkdir(parents=True)
    config = {
        "experiment_name": "study",
        "seed": seed,
        "loss": {"name": loss, "k": 5, "tau": 1.0} if loss != "ce" else {"name": loss},
        "dataset": {"noise": {"p": 0.6}},
        "study": {"row": "dataset.noise.p", "row_name": "noise p", "null_row": "none"},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "run.json").write_text(json.dumps({"dataset": {"official": False}}))
    rows = [
        {"epoch": epoch, "memo/changed/noisy_top1": value, "memo/changed/clean_top5": 50.0}
        for epoch, value in enumerate(memorised, start=1)
    ]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    final = {"status": "finished", **{f"test/top{k}": v for k, v in enumerate(topk, start=1)}}
    final.update({"test/top5_in_group": 40.0 + seed, "test/group_rule": "block"})
    final["test/worst_class_top1"] = 10.0 + seed
    (folder / "final.json").write_text(json.dumps(final))


def test_memorisation_and_topk_tables_and_figures_from_hand_made_runs(tmp_path):
    from topk_repro.results.collect import collect_runs
    from topk_repro.results.diagnostics import (
        final_memorisation,
        fit_by_epoch,
        memorisation_curves,
        topk_curves,
    )
    from topk_repro.results.layout import finished_runs

    runs_dir = tmp_path / "runs"
    for seed, last in enumerate((30.0, 40.0, 50.0)):  # CE memorises: 10 -> 30, 40, 50
        hand_made_run(runs_dir, "ce", seed, [10.0, last], [50.0 + seed] + [90.0] * 9)
        hand_made_run(runs_dir, "smooth_topk_svm", seed, [5.0, 5.0], [40.0] + [95.0] * 9)
    finished = finished_runs(collect_runs(runs_dir), "study")
    curves = memorisation_curves(finished)
    ce_last = curves[
        (curves["loss"] == "CE")
        & (curves["epoch"] == 2)
        & (curves["measure"] == "memo/changed/noisy_top1")
    ].iloc[0]
    half = 4.303 * 10.0 / 3**0.5  # values 30, 40, 50: sd 10, t(0.975, 2) = 4.303
    assert ce_last["mean"] == pytest.approx(40.0) and ce_last["seeds"] == 3
    assert (ce_last["ci_low"], ce_last["ci_high"]) == (
        pytest.approx(40 - half),
        pytest.approx(40 + half),
    )
    table = final_memorisation(curves)
    assert table.loc[("0.6", "CE"), "memo/changed/noisy_top1"] == (
        f"40.0 [{40 - half:.1f}, {40 + half:.1f}] (n=3, epoch 2)"
    )
    by_epoch = fit_by_epoch(curves)  # the demo's terminal table
    assert list(by_epoch.index) == [1, 2]
    assert by_epoch.loc[2, "CE, p=0.6"] == f"40.0 [{40 - half:.1f}, {40 + half:.1f}]"
    assert by_epoch.loc[1, "SVM k=5 tau=1, p=0.6"] == "5.0 [5.0, 5.0]"
    topk = topk_curves(finished)
    first = topk[(topk["loss"] == "CE") & (topk["k"] == 1)].iloc[0]
    assert first["mean"] == pytest.approx(51.0) and len(topk) == 2 * 10

    out = tmp_path / "tables"
    run_script_here("make_tables.py", "--runs-dir", str(runs_dir), "--out-dir", str(out))
    for name in ("study_memorisation", "study_topk"):
        for suffix in (".png", ".pdf", ".csv", ".md"):
            assert (out / f"{name}{suffix}").is_file(), name + suffix
    shares = (out / "study_topk.md").read_text()
    assert "| 0.6 | CE | block | 41.0 [" in shares  # 40, 41, 42 over the seeds
    assert "worst class, top-1 (%)" in shares


def test_the_last_epochs_table_orders_rows_by_value_not_text():
    import pandas as pd

    from topk_repro.results.diagnostics import final_memorisation

    curves = pd.DataFrame(
        [
            {
                "loss": "CE",
                "row": size,
                "measure": "memo/unchanged/top1",
                "epoch": 1,
                "mean": 50.0,
                "ci_low": 40.0,
                "ci_high": 60.0,
                "seeds": 3,
            }
            for size in (1000, 250, 2000, 500)
        ]
    )
    table = final_memorisation(curves)
    assert [row for row, _ in table.index] == ["250", "500", "1000", "2000"]
