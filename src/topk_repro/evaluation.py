"""A run folder loaded back: the model of one of its checkpoints with its test transform (for a
notebook), and every test metric recomputed from it (`scripts/evaluate.py`).

    from topk_repro.evaluation import load_run
    run = load_run("runs/demo/ce-p0.4-block-s0-1a2b3c4d5e")      # the best-val-top-5 model
    scores = run.model(run.test_transform(images_uint8))         # CIFAR: (N, 32, 32, 3) uint8

The model is rebuilt from the folder's config.yaml; the data is rebuilt from the same settings
and checked against the data identity run.json recorded (files' md5s, split, noise), so a
metric is never recomputed on other data without saying so.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from topk_repro.config.settings import check_config
from topk_repro.data import build_data
from topk_repro.data.bundle import DataBundle
from topk_repro.engine.assembly import build_loss, build_test_loader, test_metrics, tester
from topk_repro.engine.device import pick_device
from topk_repro.engine.loop import BatchSettings
from topk_repro.engine.record import DataMismatch, data_differences
from topk_repro.engine.run_dir import DamagedCheckpoint, RunDir, describe_error
from topk_repro.models import build_model

CHECKPOINTS = {"best": "best.pt", "last": "last.pt"}


@dataclass
class LoadedRun:
    """A run's model (eval mode, on `batches.device`) with what testing it needs."""

    cfg: DictConfig
    model: torch.nn.Module
    data: DataBundle
    criterion: torch.nn.Module
    crop_transform: object
    batches: BatchSettings
    checkpoint: str
    epoch: int
    data_differences: list[str]

    @property
    def test_transform(self):
        """Raw images of the data set to the model's test input (None where the data set's
        test items are built by its own loader only)."""
        return self.data.test_transform


def load_run(
    run_dir: str | Path,
    checkpoint: str = "best",
    device: str = "cpu",
    data_root: str | None = None,
    allow_other_data: bool = False,
) -> LoadedRun:
    """The model of `checkpoint` (best | last) of the run in `run_dir`, in eval mode.
    `data_root` overrides where the data set lives (dataset.root).  Raises DataMismatch when
    the data rebuilt differs from the run's record, unless `allow_other_data`."""
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
    folder = RunDir(Path(run_dir), writer=False)
    config_path = folder.path / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} does not exist: not a run folder")
    try:
        cfg = OmegaConf.load(config_path)
    except Exception as error:  # yaml's and OmegaConf's errors alike
        raise ValueError(f"{config_path} cannot be read ({describe_error(error)})") from None
    if data_root is not None:
        cfg.dataset.root = data_root
    cfg = check_config(cfg)
    state = folder.load_checkpoint(CHECKPOINTS[checkpoint])
    if state is None:
        raise FileNotFoundError(f"{folder.path / CHECKPOINTS[checkpoint]} does not exist")
    data = build_data(cfg.dataset)
    record = folder.read_json("run.json")
    if record is None and not allow_other_data:
        raise FileNotFoundError(
            f"{folder.path / 'run.json'} does not exist: the data cannot be checked against the "
            "run's record (allow_other_data / --allow-other-data evaluates anyway)"
        )
    recorded = (record or {}).get("dataset", {})
    differences = data_differences(recorded, data.record)
    if differences and not allow_other_data:
        raise DataMismatch(
            f"the data rebuilt from {config_path} is not the data the run recorded:\n  "
            + "\n  ".join(differences)
        )
    target = pick_device(device, local_rank=0)
    model = build_model(cfg.model, data.num_classes)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, AttributeError) as error:
        raise DamagedCheckpoint(
            f"{folder.path / CHECKPOINTS[checkpoint]} does not fit the model that "
            f"{config_path} describes ({cfg.model.name}): {describe_error(error)}"
        ) from None
    model.to(target).eval()
    criterion, crop_transform = build_loss(cfg, data)
    return LoadedRun(
        cfg=cfg,
        model=model,
        data=data,
        criterion=criterion,
        crop_transform=crop_transform,
        batches=BatchSettings(target, cfg.trainer.amp, False),
        checkpoint=checkpoint,
        epoch=int(state["epoch"]),
        data_differences=differences,
    )


def evaluate_run(run: LoadedRun) -> dict:
    """Every test metric of the loaded model, named as final.json names the best model's
    (test/top1, test/top5, the top-k curve, group share, per-class accuracy)."""
    loader = build_test_loader(run.cfg, run.data, run.batches.device)
    setup = tester(run.cfg, run.data, run.criterion, run.crop_transform, run.batches)
    return test_metrics(run.model, loader, setup, diagnose=True)


def recorded_metrics(final: dict, checkpoint: str) -> dict:
    """final.json's test metrics of `checkpoint`, under the names evaluate_run gives them."""
    if checkpoint == "best":
        return {key: value for key, value in final.items() if key.startswith("test/")}
    prefix = "last/"
    return {key[len(prefix) :]: v for key, v in final.items() if key.startswith(prefix + "test/")}
