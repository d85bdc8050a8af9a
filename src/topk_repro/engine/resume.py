"""How a run starts or resumes in its folder: run.json written (new, or with the resumed
segment added), the data checked against the record before a resume trains, and the best model
kept consistent after a resume from previous.pt."""

import torch
from omegaconf import DictConfig, OmegaConf

from topk_repro.data.bundle import DataBundle
from topk_repro.engine.distributed import Processes
from topk_repro.engine.record import (
    DataMismatch,
    add_resume,
    data_differences,
    run_record,
    run_segment,
)
from topk_repro.engine.run_dir import RunDir
from topk_repro.engine.settings import per_process_batch
from topk_repro.engine.state import TrainState


def write_record(
    run_dir: RunDir,
    cfg: DictConfig,
    identity: dict,
    data: DataBundle,
    model: torch.nn.Module,
    device: torch.device,
    processes: Processes,
    resuming: bool,
) -> dict:
    """Write run.json (new, or with this resume's segment added), labels.npz and config.yaml
    (the typed config); returns run.json's content."""
    parameters = sum(p.numel() for p in model.parameters())
    record = run_dir.read_json("run.json")
    segment = run_segment(cfg, str(device))
    if not resuming or record is None:
        record = run_record(cfg, identity, data.record, data.seeds, segment)
        record["processes"] = {
            "world_size": processes.world_size,
            "launcher": processes.launcher,
            "batch_per_process": per_process_batch(cfg.trainer.batch_size, processes.world_size),
        }
        record["parameters"] = parameters
        run_dir.save_labels(data.labels)
    else:
        changes = add_resume(record, segment)
        if changes:
            print(
                f"resuming under another set-up ({'; '.join(changes)}): the results may differ "
                "in the last digits from an uninterrupted run; run.json records both"
            )
    run_dir.write_json("run.json", record)
    run_dir.write_text("config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    print(
        f"run folder {run_dir.path}\n{data.summary()}\n"
        f"model {cfg.model.name}: {parameters / 1e6:.2f} M parameters; loss {cfg.loss.tag}"
    )
    return record


def check_resumed_data(run_dir: RunDir, data: DataBundle) -> None:
    """A resume trains on the data the run started on, or not at all: the rebuilt data record
    is compared with run.json's (contents, not paths: a moved folder of the same files
    resumes)."""
    recorded = (run_dir.read_json("run.json") or {}).get("dataset")
    differences = data_differences(recorded, data.record) if recorded is not None else []
    if differences:
        raise DataMismatch(
            f"{run_dir.path} cannot resume: its data is not the data the run started on "
            f"(run.json -> now):\n  " + "\n  ".join(differences) + "\nRestore that data, or "
            "train on this data in another folder (paths.run_dir=...)."
        )


def adopt_later_best(run_dir: RunDir, state: TrainState) -> None:
    """After a resume from previous.pt, best.pt may hold a model of the epoch that is run again
    (saved before last.pt was damaged).  It stays the selected model, and the state says so,
    so that the model tested as "best" is always the one whose validation score is reported."""
    best = run_dir.load_checkpoint("best.pt")  # on the CPU: only its record is read here
    if best is None or best["epoch"] <= state.epoch or "best" not in best:
        return
    if best["best"]["val/top5"] > state.best["val/top5"]:
        state.best = {key: best["best"][key] for key in ("epoch", "val/top1", "val/top5")}
