"""How a run resumes in its folder: the data checked against run.json before a resume trains,
and the best model kept consistent after a resume from previous.pt (run.json itself is written
by engine/record.py)."""

from topk_repro.data.bundle import DataBundle
from topk_repro.engine.record import (
    DataMismatch,
    data_differences,
)
from topk_repro.engine.run_dir import RunDir
from topk_repro.engine.state import TrainState


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
