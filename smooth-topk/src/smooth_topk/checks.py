"""Argument checks and the batch reduction shared by the losses.

Weights follow `torch.nn.CrossEntropyLoss`: a per-class `weight` (C,) scales sample i by
weight[y_i], and "mean" divides by the sum of those weights over the batch's non-ignored
samples (the plain count when there is no class weight).  A per-sample `sample_weight` (B,)
scales each sample's loss and does not enter the divisor.  Samples whose label equals
`ignore_index` contribute nothing (their loss is 0 under reduction="none"); when every sample is
ignored, "mean" is NaN, as in cross-entropy.
"""

import math
from dataclasses import dataclass

import torch

REDUCTIONS = ("mean", "sum", "none")
Margin = float | torch.Tensor  # a scalar, or one margin per sample (B,)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_hyperparameters(k: int, tau: float | None, alpha, reduction: str) -> None:
    """Raise ValueError for a bad k, tau, scalar alpha or reduction (tensors are checked later)."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    if tau is not None and not (_is_number(tau) and math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a finite number > 0, got {tau!r}")
    if not isinstance(alpha, torch.Tensor) and not (
        _is_number(alpha) and math.isfinite(alpha) and alpha >= 0
    ):
        raise ValueError(f"alpha must be a finite number >= 0 or a tensor of them, got {alpha!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_nonnegative_vector(name: str, value, length: int | None, what: str) -> torch.Tensor:
    """`value` as a detached floating tensor of shape (length,) (any length when None) with
    finite entries >= 0."""
    shape = f"({length},)" if length is not None else "(n,)"
    if not isinstance(value, torch.Tensor) or not torch.is_floating_point(value):
        raise ValueError(f"{name} must be a floating-point tensor of shape {shape} ({what})")
    if value.dim() != 1 or (length is not None and value.shape[0] != length):
        raise ValueError(f"{name} must have shape {shape} ({what}), got {tuple(value.shape)}")
    value = value.detach()
    valid = ((value >= 0) & torch.isfinite(value)).all()
    if value.is_cuda or torch.compiler.is_compiling():
        torch._assert_async(valid)  # no host synchronisation, nothing data-dependent
    elif value.numel() and not bool(valid):
        raise ValueError(f"{name} must hold finite values >= 0")
    return value


@dataclass
class Batch:
    """Validated inputs: scores in their compute dtype, labels safe to index with (ignored
    samples get label 0 and zero scores, so their loss is finite and never matters), the
    margin, and what the reduction needs."""

    scores: torch.Tensor
    labels: torch.Tensor
    alpha: Margin
    ignored: torch.Tensor | None  # (B,) bool, None when no sample is ignored
    class_weight: torch.Tensor | None
    sample_weight: torch.Tensor | None


def check_inputs(
    logits: torch.Tensor,
    labels: torch.Tensor,
    k: int,
    alpha: Margin,
    weight: torch.Tensor | None,
    sample_weight: torch.Tensor | None,
    ignore_index: int,
    *,
    raw_scores: bool = False,
) -> Batch:
    """Validate shapes, dtypes and ranges (ValueError naming the argument).  The scores come
    back in float32 (float64 stays) with ignored rows zeroed, or as given with `raw_scores`
    (for a kernel that reads any dtype and skips ignored rows itself)."""
    if not isinstance(logits, torch.Tensor) or not torch.is_floating_point(logits):
        raise ValueError("logits must be a floating-point tensor of shape (batch, classes)")
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (batch, classes), got {tuple(logits.shape)}")
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int64, torch.int32):
        dtype = getattr(labels, "dtype", type(labels).__name__)
        raise ValueError(f"labels must be an int64 (or int32) tensor, got {dtype}")
    batch, classes = logits.shape
    if labels.shape != (batch,):
        raise ValueError(
            f"labels must have shape ({batch},) to match logits {tuple(logits.shape)}, "
            f"got {tuple(labels.shape)}"
        )
    if labels.device != logits.device:
        raise ValueError(f"labels are on {labels.device} but logits on {logits.device}")
    if k >= classes:
        raise ValueError(f"k must be smaller than the number of classes ({classes}), got {k}")
    labels = labels.long()
    ignored = labels == ignore_index
    # No host synchronisation on the GPU, and nothing data-dependent for torch.compile: there
    # ignored rows are always masked, and a label out of range fails as an asynchronous assert
    # (on the GPU a device-side assert, as in cross-entropy).
    asynchronous = labels.is_cuda or torch.compiler.is_compiling()
    any_ignored = asynchronous or (batch > 0 and bool(ignored.any()))
    if any_ignored:
        labels = labels.masked_fill(ignored, 0)
    if asynchronous:
        torch._assert_async(((labels >= 0) & (labels < classes)).all())
    elif batch > 0:
        lowest, highest = (int(v) for v in torch.aminmax(labels))  # one pass over the labels
        if lowest < 0 or highest >= classes:
            raise ValueError(
                f"labels must lie in [0, {classes - 1}] (or equal ignore_index={ignore_index}), "
                f"got values in [{lowest}, {highest}]"
            )
    if isinstance(alpha, torch.Tensor):
        alpha = check_nonnegative_vector("alpha", alpha, batch, "one margin per sample")
        alpha = alpha.to(logits.device, torch.float64)
    else:
        alpha = float(alpha)
    if weight is not None:
        weight = check_nonnegative_vector("weight", weight, classes, "one weight per class")
    if sample_weight is not None:
        sample_weight = check_nonnegative_vector(
            "sample_weight", sample_weight, batch, "one weight per sample"
        )
    scores = logits
    if not raw_scores and scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()
    if not raw_scores and any_ignored:
        scores = scores.masked_fill(ignored[:, None], 0.0)
    return Batch(scores, labels, alpha, ignored if any_ignored else None, weight, sample_weight)


def reduce(loss: torch.Tensor, batch: Batch, reduction: str) -> torch.Tensor:
    """Apply class weight, sample weight and ignored samples, then reduce (module docstring)."""
    row_weight = None
    if batch.class_weight is not None:
        row_weight = batch.class_weight.to(loss.device, loss.dtype)[batch.labels]
    if batch.ignored is not None:
        kept = (~batch.ignored).to(loss.dtype)
        row_weight = kept if row_weight is None else row_weight * kept
    weighted = loss if row_weight is None else loss * row_weight
    if batch.sample_weight is not None:
        weighted = weighted * batch.sample_weight.to(loss.device, loss.dtype)
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    if row_weight is None:
        return weighted.mean()
    return weighted.sum() / row_weight.sum()


def rows_of(alpha: Margin, rows: torch.Tensor) -> Margin:
    """The margins of a subset of rows."""
    return alpha if isinstance(alpha, float) else alpha[rows]


def as_column(alpha: Margin, dtype: torch.dtype) -> Margin:
    """The margin broadcastable against (B, C) scores of `dtype`."""
    return alpha if isinstance(alpha, float) else alpha.to(dtype)[:, None]


def as_rows(alpha: Margin, dtype: torch.dtype) -> Margin:
    """The margin broadcastable against (B,) values of `dtype`."""
    return alpha if isinstance(alpha, float) else alpha.to(dtype)
