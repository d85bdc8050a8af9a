"""What a run carries from epoch to epoch, and how it round-trips through last.pt."""

from dataclasses import dataclass, field

import torch


@dataclass
class TrainState:
    """Progress of a run: epochs done, the best validation epoch, time spent, W&B run id."""

    epoch: int = 0
    best: dict = field(default_factory=lambda: {"epoch": 0, "val/top1": -1.0, "val/top5": -1.0})
    train_time_s: float = 0.0
    wandb_id: str | None = None

    def improves(self, row: dict) -> bool:
        """Whether an epoch's row beats the best validation top-5 so far (the paper's rule)."""
        return row["val/top5"] > self.best["val/top5"]

    def checkpoint(self, model, optimizer) -> dict:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": self.epoch,
            "best": self.best,
            "train_time_s": self.train_time_s,
            "rng_cpu": torch.get_rng_state(),
            "wandb_id": self.wandb_id,
        }

    @classmethod
    def restore(cls, checkpoint: dict, model, optimizer) -> "TrainState":
        """Load model, optimizer and RNG from a last.pt checkpoint; return the saved progress."""
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        torch.set_rng_state(checkpoint["rng_cpu"].cpu())
        best = {key: float(value) for key, value in checkpoint["best"].items()}
        best["epoch"] = int(best["epoch"])
        return cls(
            int(checkpoint["epoch"]),
            best,
            float(checkpoint["train_time_s"]),
            checkpoint.get("wandb_id"),
        )
