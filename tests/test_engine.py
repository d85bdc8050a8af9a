"""The training engine: presets, run folders, resume, finished runs, W&B, DDP, errors."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from helpers import compose_config, offline_history, tiny_overrides
from smooth_topk import cpu_kernel
from topk_repro.engine import fit
from topk_repro.engine.loop import BatchSettings, NonFiniteLoss
from topk_repro.engine.schedule import learning_rate

ROOT = Path(__file__).resolve().parents[1]
METRIC_KEYS = {
    "epoch",
    "train/loss",
    "train/top1",
    "train/top5",
    "val/top1",
    "val/top5",
    "lr",
    "epoch_time_s",
    "images_per_s",
}
FINAL_KEYS = {
    "status",
    "epochs_completed",
    "best_epoch",
    "best_val/top1",
    "best_val/top5",
    "test/top1",
    "test/top5",
    "last/test/top1",
    "last/test/top5",
    "train_time_s",
}
SCORE_KEYS = sorted(FINAL_KEYS - {"train_time_s"})


def test_paper_presets_encode_the_paper_facts():
    for loss in ("ce", "smooth_topk_svm"):
        cfg = compose_config(["experiment=cifar100_noise", f"loss={loss}"])
        assert cfg.experiment_name == "cifar100_noise"
        assert cfg.dataset.name == "cifar100" and cfg.dataset.split_seed == 1234
        assert cfg.dataset.val_count == 5000 and cfg.dataset.noise.mode == "block"
        assert cfg.model.name == "densenet" and cfg.model.depth == 40
        assert cfg.model.growth_rate == 40 and cfg.model.compression == 0.5
        assert cfg.trainer.epochs == 300 and cfg.trainer.batch_size == 64
        assert cfg.optim.lr == 0.1 and cfg.optim.weight_decay == 1e-4
        assert cfg.optim.nesterov and cfg.optim.momentum == 0.9
        assert list(cfg.optim.milestones) == [151, 226] and cfg.optim.gamma == 0.1
    svm = compose_config(["experiment=cifar100_noise"]).loss
    assert (svm.name, svm.k, svm.tau, svm.alpha) == ("smooth_topk_svm", 5, 1.0, 1.0)

    ce = compose_config(["experiment=imagenet_subsets", "loss=ce"])
    assert ce.model.name == "resnet18" and ce.trainer.epochs == 120
    assert ce.trainer.batch_size == 256 and list(ce.optim.milestones) == [31, 61, 91]
    assert ce.optim.lr == 0.1 and ce.optim.weight_decay == 1e-4
    assert ce.dataset.val_per_class == 50 and ce.dataset.test_crops == 10
    svm = compose_config(["experiment=imagenet_subsets"])
    assert svm.optim.lr == 1.0 and svm.optim.weight_decay == 2.5e-5
    assert (svm.loss.k, svm.loss.tau, svm.loss.alpha) == (5, 0.1, 1.0)


@pytest.mark.parametrize("experiment", ["demo", "cifar100_noise", "imagenet_subsets"])
@pytest.mark.parametrize("loss", ["ce", "smooth_topk_svm", "hard_topk_svm"])
def test_every_preset_composes(experiment, loss):
    cfg = compose_config([f"experiment={experiment}", f"loss={loss}", "logger=wandb"])
    assert cfg.run_name.startswith(cfg.loss.tag)


def test_learning_rate_schedule_counts_epochs_from_one():
    rates = [learning_rate(e, 0.1, [151, 226], 0.1) for e in (1, 150, 151, 225, 226, 300)]
    assert rates == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_misspelt_key_fails_naming_it(tmp_path):
    with pytest.raises(ConfigCompositionException, match="nois"):
        compose_config(tiny_overrides(tmp_path, "dataset.nois.p=0.2"))
    with pytest.raises(ConfigCompositionException, match="model"):
        compose_config(tiny_overrides(tmp_path, "model=resnet1000"))


@pytest.mark.parametrize(
    "override,message",
    [
        ("dataset.noise.p=1.5", "dataset.noise.p must be in"),
        ("dataset.noise.mode=blocky", "dataset.noise.mode must be one of"),
        ("loss.k=100", r"loss.k must be an int in \[1, 99\]"),
        ("loss.tau=0", "loss.tau must be a finite number > 0"),
        ("loss.alpha=-1", "loss.alpha must be a finite number >= 0"),
        ("loss.k=abc", "loss.k: Value 'abc' of type 'str' could not be converted to Integer"),
        ("trainer.epochs=1.5", "trainer.epochs: Value '1.5' .* could not be converted"),
        ("trainer.eval_batch_size=0", "trainer.eval_batch_size must be >= 1"),
        ("optim.lr=fast", "optim.lr: Value 'fast'"),
        ("optim.milestones=[0]", "optim.milestones must be >= 1"),
        ("dataset.num_workers=-1", "dataset.num_workers must be >= 0"),
        ("model.width=2.5", "model.width: Value '2.5'"),
        ("trainer.progress=maybe", "trainer.progress must be auto, true or false"),
        ("seed=1.5", "seed: Value .1.5. of type .float. could not be converted"),
        ("+loss.kk=3", "loss.kk: Key 'kk' not in 'SmoothSettings'"),
    ],
)
def test_wrong_values_fail_before_any_work(tmp_path, override, message):
    cfg = compose_config(tiny_overrides(tmp_path, "loss=smooth_topk_svm", override))
    with pytest.raises(ValueError, match=message):
        fit.run(cfg, tmp_path / "run")
    assert not (tmp_path / "data").exists()  # nothing was generated or written


def test_dry_run_writes_record_and_labels_only(tmp_path, capsys):
    cfg = compose_config(tiny_overrides(tmp_path, "trainer.epochs=0", "dataset.noise.p=0.4"))
    assert fit.run(cfg, tmp_path / "run") is None
    out = capsys.readouterr().out
    assert "train 400, val 200, test 200" in out and "M parameters" in out and "realised" in out
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"run.json", "labels.npz"} <= files and "final.json" not in files
    labels = np.load(tmp_path / "run" / "labels.npz")
    assert set(labels.files) >= {"train_index", "train_clean", "train_noisy", "val_index"}
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["loss_cpu_kernel"] is None  # cross-entropy: the kernel is not asked for
    assert record["loss_implementation"] is None


def test_same_noise_seed_same_labels_whatever_loss_or_training_seed(tmp_path):
    folders = []
    for loss, seed in (("ce", 0), ("smooth_topk_svm", 7)):
        cfg = compose_config(
            tiny_overrides(
                tmp_path, "trainer.epochs=0", f"loss={loss}", f"seed={seed}", "dataset.noise.p=0.6"
            )
        )
        fit.run(cfg, tmp_path / loss)
        folders.append(np.load(tmp_path / loss / "labels.npz"))
    assert (folders[0]["train_noisy"] == folders[1]["train_noisy"]).all()
    assert (folders[0]["train_noisy"] != folders[0]["train_clean"]).any()


def test_smoke_run_writes_complete_folder_and_finished_run_is_not_rerun(tmp_path, capsys):
    cfg = compose_config(tiny_overrides(tmp_path, "loss=smooth_topk_svm", "dataset.noise.p=0.2"))
    run_dir = tmp_path / "run"
    final = fit.run(cfg, run_dir)
    assert set(final) >= FINAL_KEYS and final["status"] == "finished"
    assert final["epochs_completed"] == 2
    names = (
        "config.yaml",
        "run.json",
        "labels.npz",
        "metrics.jsonl",
        "final.json",
        "last.pt",
        "best.pt",
    )
    for name in names:
        assert (run_dir / name).is_file(), name
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2] and set(rows[0]) >= METRIC_KEYS
    assert all(0 <= row["val/top5"] <= 100 for row in rows)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["seeds"] == {"train": 0, "noise": 0, "split": 1234}
    assert record["dataset"]["official"] is False and record["dataset"]["name"] == "synthetic"
    assert {"git", "versions", "host", "device", "start_time"} <= set(record)
    expected = "cpu_kernel" if cpu_kernel.available() else "pytorch"
    assert record["loss_implementation"] == expected
    kernel_file = cpu_kernel.status() if expected == "cpu_kernel" else None
    assert record["loss_cpu_kernel"] == kernel_file  # a CPU run of the smooth loss
    best = torch.load(run_dir / "best.pt", weights_only=True)
    assert best["epoch"] == final["best_epoch"]

    before = (run_dir / "metrics.jsonl").read_text()
    again = fit.run(cfg, run_dir)
    assert "already finished" in capsys.readouterr().out and again == final
    assert (run_dir / "metrics.jsonl").read_text() == before

    forced = compose_config(
        tiny_overrides(
            tmp_path, "loss=smooth_topk_svm", "dataset.noise.p=0.2", "trainer.force=true"
        )
    )
    fit.run(forced, run_dir)
    retrained = [p for p in tmp_path.iterdir() if p.name.startswith("run-retrain-")]
    assert len(retrained) == 1 and (retrained[0] / "final.json").is_file()


def test_non_finite_loss_fails_with_epoch_and_step(tmp_path, monkeypatch):
    real_build = fit.build_criterion

    def nan_at_third_step(cfg, num_classes):
        criterion, transform = real_build(cfg, num_classes)
        calls = {"n": 0}

        def poisoned(logits, labels):
            calls["n"] += 1
            loss = criterion(logits, labels)
            return loss * float("nan") if calls["n"] == 3 else loss

        return poisoned, transform

    monkeypatch.setattr(fit, "build_criterion", nan_at_third_step)
    cfg = compose_config(tiny_overrides(tmp_path))
    with pytest.raises(NonFiniteLoss, match="epoch 1, step 3"):
        fit.run(cfg, tmp_path / "run")
    final = json.loads((tmp_path / "run" / "final.json").read_text())
    assert final["status"] == "failed"
    assert "epoch 1, step 3" in final["reason"]


def _train_command(tmp_path: Path, run_dir: Path, epochs: int) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "src" / "train.py"),
        *tiny_overrides(
            tmp_path,
            f"trainer.epochs={epochs}",
            f"paths.run_dir={run_dir}",
            "loss=smooth_topk_svm",
            "dataset.noise.p=0.4",
            "dataset.train_size=1000",
            "dataset.synthetic.num_train=2000",
        ),
    ]


@pytest.mark.slow
def test_interrupted_and_resumed_run_ends_like_an_uninterrupted_one(tmp_path):
    epochs = 4
    straight = tmp_path / "straight"
    subprocess.run(_train_command(tmp_path, straight, epochs), check=True, capture_output=True)

    resumed = tmp_path / "resumed"
    process = subprocess.Popen(
        _train_command(tmp_path, resumed, epochs), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        metrics = resumed / "metrics.jsonl"
        if metrics.is_file() and metrics.read_text().strip():
            process.send_signal(signal.SIGTERM)
            break
        time.sleep(0.05)
    process.communicate(timeout=120)
    final = json.loads((resumed / "final.json").read_text())
    assert final["status"] == "interrupted" and final["epochs_completed"] < epochs
    assert process.returncode == 143

    result = subprocess.run(
        _train_command(tmp_path, resumed, epochs), check=True, capture_output=True, text=True
    )
    assert "resuming from epoch" in result.stdout
    expected = json.loads((straight / "final.json").read_text())
    final = json.loads((resumed / "final.json").read_text())
    assert {k: final[k] for k in SCORE_KEYS} == {k: expected[k] for k in SCORE_KEYS}
    rows = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == list(range(1, epochs + 1))
    assert (resumed / ".hydra" / "config.yaml").is_file()
    log = (resumed / "train.log").read_text()  # the console output of both segments
    assert "epoch 1/4" in log and "interrupted by SIGTERM" in log
    assert "resuming from epoch" in log and "finished: best epoch" in log


@pytest.mark.slow
def test_wandb_offline_run_lives_in_run_folder_and_holds_metrics(tmp_path):
    cfg = compose_config(
        tiny_overrides(tmp_path, "logger=wandb", "logger.mode=offline", "experiment_name=wb")
    )
    final = fit.run(cfg, tmp_path / "run")
    logs = list((tmp_path / "run" / "wandb").glob("offline-run-*/*.wandb"))
    assert len(logs) == 1
    history, summary, runs = offline_history(tmp_path / "run")
    assert len(runs) == 1
    run_record = json.loads((tmp_path / "run" / "run.json").read_text())
    for run in runs:
        assert run.run_group == "wb" and run.job_type == "ce"
        name = f"{cfg.run_name}-{run_record['identity_digest']}"  # as the run folder's
        assert run.display_name == name
        assert {"loss:ce", "experiment:wb", "noise:block-p0"} <= set(run.tags)
        config = {item.key: json.loads(item.value_json) for item in run.config.update}
        assert config["run"]["identity_digest"] == run_record["identity_digest"]
        assert config["run"]["data"] == {"name": "synthetic", "official": False}
        assert config["run"]["world_size"] == 1
    assert [row["epoch"] for row in history] == [1, 2]
    assert {"val/top5", "train/loss"} <= set(history[0])
    # The summary keeps every metric's last epoch (W&B's way), the best epoch's under best/*,
    # and final.json's values.
    last = [row for row in history if "val/top5" in row][-1]
    for key in ("val/top5", "val/top1", "train/loss", "lr"):
        assert summary[key] == pytest.approx(last[key]), key
    assert summary["best/val/top5"] == pytest.approx(final["best_val/top5"])
    assert summary["best/epoch"] == final["best_epoch"]
    for key, value in final.items():
        assert summary[key] == (pytest.approx(value) if isinstance(value, float) else value), key


def _ddp_worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist
    from omegaconf import OmegaConf

    from topk_repro.data.arrays import ArrayDataset
    from topk_repro.engine.loaders import build_loader
    from topk_repro.engine.loop import evaluate
    from topk_repro.models import build_model

    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    torch.manual_seed(0)
    model = build_model(OmegaConf.create({"name": "cifar_small", "width": 8}), 100)
    images = np.random.default_rng(0).integers(0, 256, (203, 32, 32, 3), dtype=np.uint8)
    labels = np.random.default_rng(1).integers(0, 100, 203)
    dataset = ArrayDataset(images, labels, train=False)
    loader = build_loader(
        dataset,
        train=False,
        batch_size=32,
        loader="standard",
        num_workers=0,
        device=torch.device("cpu"),
        seed=0,
        rank=rank,
        world_size=world_size,
    )
    result = evaluate(
        model,
        loader,
        torch.nn.CrossEntropyLoss(),
        prefix="val",
        batches=BatchSettings(torch.device("cpu")),
    )
    Path(out_dir, f"rank{rank}-of-{world_size}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_gloo_reduced_metrics_equal_single_process(tmp_path):
    for world_size in (1, 2):
        init_file = tmp_path / f"init{world_size}"
        torch.multiprocessing.spawn(
            _ddp_worker,
            args=(world_size, str(init_file), str(tmp_path)),
            nprocs=world_size,
            join=True,
        )
    single = json.loads((tmp_path / "rank0-of-1.json").read_text())
    for rank in (0, 1):
        reduced = json.loads((tmp_path / f"rank{rank}-of-2.json").read_text())
        assert reduced["val/top1"] == single["val/top1"]  # the same counts, exactly
        assert reduced["val/top5"] == single["val/top5"]
        assert reduced["val/loss"] == pytest.approx(single["val/loss"], rel=1e-6)  # float32 sums


def test_bad_key_access_in_struct_config_names_the_key(tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path))
    with pytest.raises((ConfigAttributeError, ConfigKeyError), match="noize"):
        _ = cfg.dataset.noize


@pytest.mark.parametrize("loss", ["ce", "smooth_topk_svm"])
def test_imagenet_run_with_ten_crop_test(tmp_path, loss):
    from helpers import write_imagefolder_fixture

    write_imagefolder_fixture(tmp_path / "imagenet", classes=3, train_per_class=8, val_per_class=2)
    cfg = compose_config(
        [
            "experiment=imagenet_subsets",
            f"loss={loss}",
            "loss.k=2" if loss != "ce" else "seed=0",
            f"dataset.root={tmp_path / 'imagenet'}",
            "dataset.val_per_class=2",
            "dataset.train_per_class=4",
            "dataset.num_workers=0",
            "dataset.image_size=32",
            "dataset.resize=36",
            "trainer.epochs=1",
            "trainer.batch_size=6",
            "trainer.device=cpu",
            "trainer.eval_batch_size=20",
            "trainer.progress=false",
        ]
    )
    final = fit.run(cfg, tmp_path / "run")
    assert final["status"] == "finished"
    assert 0 <= final["test/top1"] <= final["test/top5"] <= 100
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["dataset"]["split"]["train"] == 12 and record["dataset"]["split"]["test"] == 6


@pytest.mark.parametrize(
    "launcher,target",
    [
        ("basic", "BasicLauncher"),
        ("joblib", "JoblibLauncher"),
        ("submitit_local", "LocalLauncher"),
        ("submitit_slurm", "SlurmLauncher"),
    ],
)
def test_launcher_presets_select_the_hydra_plugin(launcher, target):
    from hydra import compose, initialize_config_dir

    from helpers import CONFIGS

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(
            config_name="train", overrides=[f"launcher={launcher}"], return_hydra_config=True
        )
    assert cfg.hydra.launcher._target_.endswith(target)


@pytest.mark.parametrize("equal_counts", [True, False])
def test_epoch_sampler_length_matches_its_indices_on_every_rank(equal_counts):
    from topk_repro.engine.loaders import EpochSampler

    shares = []
    for rank in range(3):
        sampler = EpochSampler(
            10, shuffle=True, seed=4, rank=rank, world_size=3, equal_counts=equal_counts
        )
        sampler.set_epoch(2)
        shares.append(list(sampler))
        assert len(sampler) == len(shares[-1])
    covered = sorted(i for share in shares for i in share)
    assert len(set(covered)) == len(covered)  # no index served twice
    assert len(covered) == (9 if equal_counts else 10)  # training drops the tail for DDP


def test_a_bad_imagenet_test_image_stops_the_run_before_training(tmp_path):
    from helpers import write_imagefolder_fixture

    write_imagefolder_fixture(tmp_path / "imagenet", classes=3, train_per_class=8, val_per_class=2)
    broken = sorted((tmp_path / "imagenet" / "val").rglob("*.png"))[1]
    broken.write_bytes(broken.read_bytes()[:40])
    cfg = compose_config(
        [
            "experiment=imagenet_subsets",
            "loss=ce",
            f"dataset.root={tmp_path / 'imagenet'}",
            "dataset.val_per_class=2",
            "dataset.train_per_class=4",
            "dataset.num_workers=0",
            "dataset.test_crops=1",
            "trainer.epochs=1",
            "trainer.device=cpu",
            "trainer.progress=false",
        ]
    )
    with pytest.raises(ValueError, match=rf"1 image\(s\) under .* cannot be read: {broken}"):
        fit.run(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # no epoch was trained
