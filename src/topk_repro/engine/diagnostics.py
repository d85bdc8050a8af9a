"""Why a loss resists label noise, measured beside the training.

- Memorisation, after each epoch: on a fixed subset of the training images, unaugmented, the
  share whose *noisy* label the model predicts (top-1, within top-5) and the share whose *clean*
  label it predicts, separately for the images whose label the noise changed and for the
  others.  Cross-entropy fitting the noise shows as `memo/changed/noisy_top1` rising towards
  100 while `memo/changed/clean_top5` falls.
- At test: top-k accuracy for k = 1..K, the share of the top-5 predictions that fall inside
  the true label's noise group (block or super-class), and per-class accuracy.
All percentages; sums are reduced across processes like the engine's Meter.
"""

import numpy as np
import torch
import torch.distributed as dist

from topk_repro.engine.interrupt import StopFlag


def probe_indices(train_size: int, count: int, seed: int) -> np.ndarray:
    """The training images probed for memorisation: `count` of them drawn once from `seed`
    (sorted), all of them when `count` is at least the training set's size."""
    if count >= train_size:
        return np.arange(train_size)
    return np.sort(np.random.default_rng(seed).choice(train_size, count, replace=False))


def _all_reduce(sums: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(sums)
    return sums


def _percent(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole else None


class MemorisationMeter:
    """Counts over images labelled (clean, noisy): changed images, and how many of them have
    their noisy / clean label at top-1 and within top-5; unchanged images and their hits."""

    FIELDS = (
        "changed",
        "changed_noisy_top1",
        "changed_noisy_top5",
        "changed_clean_top1",
        "changed_clean_top5",
        "unchanged",
        "unchanged_top1",
        "unchanged_top5",
    )

    def __init__(self, device):
        self.sums = torch.zeros(len(self.FIELDS), dtype=torch.float64, device=device)

    @torch.no_grad()
    def update(self, scores: torch.Tensor, labels: torch.Tensor) -> None:
        clean, noisy = labels[:, 0], labels[:, 1]
        top = scores.topk(min(5, scores.shape[1]), dim=1).indices
        noisy_hits, clean_hits = top == noisy[:, None], top == clean[:, None]
        changed = clean != noisy
        same = ~changed
        counts = [
            changed.sum(),
            (changed & noisy_hits[:, 0]).sum(),
            (changed & noisy_hits.any(1)).sum(),
            (changed & clean_hits[:, 0]).sum(),
            (changed & clean_hits.any(1)).sum(),
            same.sum(),
            (same & clean_hits[:, 0]).sum(),
            (same & clean_hits.any(1)).sum(),
        ]
        self.sums += torch.stack(counts).double()

    def result(self) -> dict:
        """`memo/*` percentages; the changed images' keys only when there are some (p > 0)."""
        s = dict(zip(self.FIELDS, _all_reduce(self.sums).tolist(), strict=True))
        row = {"memo/changed_images": int(s["changed"])}
        if s["changed"]:
            for fit in ("noisy", "clean"):
                for k in ("top1", "top5"):
                    row[f"memo/changed/{fit}_{k}"] = _percent(s[f"changed_{fit}_{k}"], s["changed"])
        for k in ("top1", "top5"):
            row[f"memo/unchanged/{k}"] = _percent(s[f"unchanged_{k}"], s["unchanged"])
        return row


@torch.no_grad()
def memorisation(model, loader, batches, stop: StopFlag | None = None) -> dict:
    """`memo/*` of `model` on the probe images (`loader` yields images and (clean, noisy))."""
    model.eval()
    meter = MemorisationMeter(batches.device)
    for batch in loader:
        if stop is not None:
            stop.raise_if_set()
        images, labels = batches.to_device(batch)
        with batches.autocast():
            scores = model(images).float()
        meter.update(scores, labels)
    return meter.result()


class TopkDiagnostics:
    """Top-k hits for k = 1..topk_max, top-5 predictions inside the true label's group, and
    per-class top-1/top-5 hits, accumulated over the test batches."""

    def __init__(self, num_classes: int, topk_max: int, groups, device):
        self.num_classes = num_classes
        self.topk_max = min(topk_max, num_classes)
        self.group_name, group_of = groups if groups is not None else (None, None)
        self.group_of = None if group_of is None else torch.as_tensor(group_of, device=device)
        self.hits = torch.zeros(self.topk_max, dtype=torch.float64, device=device)
        self.in_group = torch.zeros(2, dtype=torch.float64, device=device)  # hits, predictions
        self.per_class = torch.zeros(3, num_classes, dtype=torch.float64, device=device)

    @torch.no_grad()
    def update(self, scores: torch.Tensor, labels: torch.Tensor) -> None:
        top = scores.topk(self.topk_max, dim=1).indices
        first_hit = (top == labels[:, None]).int().cumsum(1) > 0  # hit within top-k, k = 1..
        self.hits += first_hit.sum(0).double()
        count = lambda mask: torch.bincount(  # noqa: E731
            labels[mask], minlength=self.num_classes
        ).double()
        top5 = min(5, self.topk_max) - 1
        self.per_class += torch.stack(
            [count(first_hit[:, 0]), count(first_hit[:, top5]), count(torch.ones_like(labels) > 0)]
        )
        if self.group_of is not None:
            inside = self.group_of[top[:, : top5 + 1]] == self.group_of[labels][:, None]
            self.in_group[0] += inside.sum()
            self.in_group[1] += inside.numel()

    def result(self, prefix: str) -> dict:
        hits = _all_reduce(self.hits).tolist()
        per_class = _all_reduce(self.per_class)
        total = float(per_class[2].sum())
        row = {f"{prefix}/top{k}": _percent(hits[k - 1], total) for k in range(1, len(hits) + 1)}
        seen = per_class[2] > 0
        for index, name in ((0, "top1"), (1, "top5")):
            shares = torch.where(seen, 100 * per_class[index] / per_class[2].clamp(min=1), np.nan)
            row[f"{prefix}/per_class_{name}"] = [
                None if np.isnan(v) else v for v in shares.tolist()
            ]
            row[f"{prefix}/worst_class_{name}"] = float(shares[seen].min()) if seen.any() else None
        if self.group_of is not None:
            inside, predictions = _all_reduce(self.in_group).tolist()
            row[f"{prefix}/top5_in_group"] = _percent(inside, predictions)
            row[f"{prefix}/group_rule"] = self.group_name
        return row
