"""One training epoch and one evaluation pass, and how their batches are run."""

import contextlib
from dataclasses import dataclass

import torch
from tqdm import tqdm

from topk_repro.engine.diagnostics import TopkDiagnostics
from topk_repro.engine.interrupt import StopFlag
from topk_repro.engine.metrics import Meter

# On an accelerator the loss is checked for NaN on the device at every step and read back by
# the host only every this many steps (and at the end of the epoch): reading it every step would
# stall the device queue.  On the CPU reading costs nothing, so it is read at every step.
ACCELERATOR_CHECK_EVERY = 100


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite; the message names the epoch and step."""


@dataclass(frozen=True)
class BatchSettings:
    """How batches are run: on which device, with bf16 autocast or not (CUDA only), and whether
    images are laid out channels-last."""

    device: torch.device
    amp: bool = False
    channels_last: bool = False

    def autocast(self):
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def to_device(self, batch):
        images, labels = batch
        images = images.to(self.device, non_blocking=True)
        if self.channels_last and images.dim() == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, labels.to(self.device, non_blocking=True)


class NonFiniteWatch:
    """The first step whose loss is not finite, tracked on the device (no host read per step on
    an accelerator); `check` raises NonFiniteLoss naming the epoch and step."""

    def __init__(self, device: torch.device, epoch: int):
        self.epoch = epoch
        self.every = 1 if device.type == "cpu" else ACCELERATOR_CHECK_EVERY
        self.first = torch.zeros((), dtype=torch.long, device=device)  # 0: none yet

    def update(self, loss: torch.Tensor, step: int) -> None:
        bad = (self.first == 0) & ~torch.isfinite(loss.detach())
        self.first = torch.where(bad, step, self.first)
        if step % self.every == 0:
            self.check()

    def check(self) -> None:
        step = int(self.first)
        if step:
            raise NonFiniteLoss(f"non-finite loss at epoch {self.epoch}, step {step}")


def train_epoch(
    model,
    loader,
    criterion,
    optimizer,
    *,
    epoch: int,
    batches: BatchSettings,
    stop: StopFlag,
    progress: bool,
) -> dict:
    """Train one epoch; the mean loss and accuracies of its batches."""
    model.train()
    meter = Meter(batches.device)
    watch = NonFiniteWatch(batches.device, epoch)
    bar = tqdm(loader, desc=f"epoch {epoch} train", leave=False, disable=not progress)
    for step, batch in enumerate(bar, start=1):
        stop.raise_if_set()
        images, labels = batches.to_device(batch)
        with batches.autocast():
            logits = model(images)
            loss = criterion(logits, labels)
        watch.update(loss, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        meter.update(logits.detach().float(), labels, loss.detach() * len(labels))
    watch.check()
    return meter.all_reduce().result("train")


@torch.no_grad()
def evaluate(
    model,
    loader,
    criterion,
    *,
    prefix: str,
    batches: BatchSettings,
    crop_transform=None,
    stop: StopFlag | None = None,
    progress: bool = False,
    diagnostics: TopkDiagnostics | None = None,
) -> dict:
    """Loss and accuracy; items of shape (crops, C, H, W) are scored by averaging
    `crop_transform(logits)` over their crops (the paper's ten-crop test).  With `diagnostics`,
    its measurements too (top-k curve, group share, per-class accuracy)."""
    model.eval()
    meter = Meter(batches.device)
    for batch in tqdm(loader, desc=prefix, leave=False, disable=not progress):
        if stop is not None:
            stop.raise_if_set()
        images, labels = batches.to_device(batch)
        crops = images.shape[1] if images.dim() == 5 else 1
        with batches.autocast():
            logits = model(images.flatten(0, 1) if crops > 1 else images)
        if crops > 1:
            logits = logits.float().view(len(labels), crops, -1)
            scores = crop_transform(logits).mean(1)
            loss = criterion(logits.mean(1), labels)
        else:
            scores = logits.float()
            loss = criterion(logits, labels)
        meter.update(scores, labels, loss.float() * len(labels))
        if diagnostics is not None:
            diagnostics.update(scores, labels)
    result = meter.all_reduce().result(prefix)
    if diagnostics is not None:
        result.update(diagnostics.result(prefix))
    return result
