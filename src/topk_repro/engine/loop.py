"""One training epoch and one evaluation pass."""

import contextlib
import math

import torch
from tqdm import tqdm

from topk_repro.engine.interrupt import StopFlag
from topk_repro.engine.metrics import Meter


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite; the message names the epoch and step."""


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to(batch, device, channels_last: bool):
    images, labels = batch
    images = images.to(device, non_blocking=True)
    if channels_last and images.dim() == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, labels.to(device, non_blocking=True)


def train_epoch(
    model,
    loader,
    criterion,
    optimizer,
    *,
    epoch: int,
    device,
    amp: bool,
    channels_last: bool,
    stop: StopFlag,
    progress: bool,
) -> dict:
    model.train()
    meter = Meter(device)
    bar = tqdm(loader, desc=f"epoch {epoch} train", leave=False, disable=not progress)
    for step, batch in enumerate(bar, start=1):
        stop.raise_if_set()
        images, labels = _to(batch, device, channels_last)
        with _autocast(device, amp):
            logits = model(images)
            loss = criterion(logits, labels)
        if not math.isfinite(loss.item()):
            raise NonFiniteLoss(f"non-finite loss ({loss.item()}) at epoch {epoch}, step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        meter.update(logits.detach().float(), labels, loss.detach() * len(labels))
    return meter.all_reduce().result("train")


@torch.no_grad()
def evaluate(
    model,
    loader,
    criterion,
    *,
    prefix: str,
    device,
    amp: bool,
    channels_last: bool,
    crop_transform=None,
    stop: StopFlag | None = None,
    progress: bool = False,
) -> dict:
    """Loss and accuracy; items of shape (crops, C, H, W) are scored by averaging
    `crop_transform(logits)` over their crops (the paper's ten-crop test)."""
    model.eval()
    meter = Meter(device)
    for batch in tqdm(loader, desc=prefix, leave=False, disable=not progress):
        if stop is not None:
            stop.raise_if_set()
        images, labels = _to(batch, device, channels_last)
        crops = images.shape[1] if images.dim() == 5 else 1
        with _autocast(device, amp):
            logits = model(images.flatten(0, 1) if crops > 1 else images)
        if crops > 1:
            logits = logits.float().view(len(labels), crops, -1)
            scores = crop_transform(logits).mean(1)
            loss = criterion(logits.mean(1), labels)
        else:
            scores = logits.float()
            loss = criterion(logits, labels)
        meter.update(scores, labels, loss.float() * len(labels))
    return meter.all_reduce().result(prefix)
