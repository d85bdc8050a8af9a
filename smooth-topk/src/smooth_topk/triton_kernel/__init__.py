"""The Triton implementation of the loss (`_kernels.py`, beside this file), for CUDA tensors.

One graph operator, `smooth_topk::triton_loss_and_grad`, computes the per-row loss and dL/ds in
one forward call (two kernel launches, no host synchronisation); the backward scales that
gradient by the upstream one.  So a compiled model keeps the loss in its graph
(`torch.compile(..., fullgraph=True)`) and CUDA-graph capture records it.  Rows with a non-finite
score give NaN, as in cross-entropy.

Triton is optional (it ships with torch's CUDA builds).  With TRITON_INTERPRET=1 set before the
first call, the kernels run on CPU tensors with numpy: that is how the tests check them on
machines without a GPU (slowly: keep shapes small).
"""

import math
import os
import struct
from functools import cache
from types import ModuleType

import torch

from smooth_topk import cpu_kernel
from smooth_topk.autograd import register_loss_autograd
from smooth_topk.constants import POWER_SUMS_MAX_K, TARGET, TRITON_MAX_K
from smooth_topk.pytorch.power_sums import accuracy_limit

# Bytes of prefix coefficients the sequential kernel's programs may hold in all: less for k <= 10,
# where it serves only the rows the power-sum bound rejects (often none).
_SCRATCH_BUDGET = {"k <= 10": 64 * 2**20, "k > 10": 256 * 2**20}
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def interpreted() -> bool:
    """Whether Triton runs kernels in its interpreter (on CPU tensors)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


_import_error: list[str] = []  # why the kernels could not be imported, once tried


@cache
def kernels() -> ModuleType | None:
    """The kernel module, or None without Triton (or without numpy, which its interpreter
    needs)."""
    try:
        from smooth_topk.triton_kernel import _kernels
    except ImportError as error:
        _import_error.append(str(error))
        return None
    return _kernels


@torch.compiler.assume_constant_result  # torch.compile takes the answer as a constant
def installed() -> bool:
    """Whether Triton is installed (and the kernels import)."""
    return kernels() is not None


def usable(scores: torch.Tensor, k: int) -> bool:
    """Whether the kernels serve these scores: CUDA (or the interpreter on the CPU), a floating
    dtype, k <= TRITON_MAX_K, and Triton installed."""
    device_ok = scores.is_cuda or (scores.device.type == "cpu" and interpreted())
    return device_ok and scores.dtype in _DTYPES and k <= TRITON_MAX_K and installed()


def status() -> str:
    """One line for error messages: why the kernels may not serve."""
    if kernels() is None:
        return f"Triton cannot be imported ({_import_error[-1]})"
    return "Triton available; CUDA tensors (or TRITON_INTERPRET=1 with CPU tensors)"


def _programs(scores: torch.Tensor, k: int, per_program: int) -> int:
    """How many programs the sequential kernel runs (each holds one scratch slot)."""
    if scores.is_cuda:  # one per multiprocessor
        wanted = torch.cuda.get_device_properties(scores.device).multi_processor_count
    else:  # the interpreter
        wanted = 4
    budget = _SCRATCH_BUDGET["k <= 10" if k <= POWER_SUMS_MAX_K else "k > 10"]
    return max(1, min(scores.shape[0], wanted, budget // per_program))


def _launch(scores, labels, margins, k: int, tau: float, target: float):
    """Per-row loss (float32, float64 for float64 scores), dL/ds (the scores' dtype) and the
    route each row took (codes in `_kernels.py`)."""
    module = kernels()
    batch, classes = scores.shape
    loss_dtype = torch.float64 if scores.dtype == torch.float64 else torch.float32
    loss = torch.empty(batch, dtype=loss_dtype, device=scores.device)
    grad = torch.empty_like(scores)
    # Every row's route: the power-sum kernel writes each (k <= 10); for k > 10 every row
    # starts as PRODUCTS for the sequential kernel.
    if k <= POWER_SUMS_MAX_K:
        route = torch.empty(batch, dtype=torch.int8, device=scores.device)
    else:
        route = torch.full((batch,), module.PRODUCTS.value, dtype=torch.int8, device=scores.device)
    if batch == 0:
        return loss, grad, route
    coefficients = _next_power_of_2(k + 1)
    block = min(256, _next_power_of_2(classes))
    margin_stride = 0 if margins.numel() == 1 else 1
    common = (scores, labels, margins, margin_stride, loss, grad)
    if k <= POWER_SUMS_MAX_K:
        limit = accuracy_limit(target, k, classes)
        module.power_sum_kernel[(batch,)](
            *common,
            route,
            classes,
            scores.stride(0),
            _bits(tau),
            _bits(limit),
            K=k,
            KP=coefficients,
            BLOCK=block,
            num_warps=4,
        )
    per_program = classes * coefficients * 8
    programs = _programs(scores, k, per_program)
    scratch = torch.empty(
        programs * classes * coefficients, dtype=torch.float64, device=scores.device
    )
    module.sequential_kernel[(programs,)](
        *common,
        route,
        scratch,
        batch,
        classes,
        scores.stride(0),
        _bits(tau),
        K=k,
        KP=coefficients,
        BLOCK=block,
        num_warps=1,
    )
    return loss, grad, route


def routes(scores, labels, k: int, tau: float, alpha: float = 1.0) -> list[str]:
    """The path each row takes in the kernels (for tests and curious users)."""
    margins = cpu_kernel.margins(alpha, scores.device)
    target = target_for(scores.dtype)
    route = _launch(scores.contiguous(), labels.contiguous(), margins, k, float(tau), target)[2]
    module = kernels()
    names = {  # the codes are the kernels' own constants
        module.IGNORED.value: "ignored",
        module.POWER_SUMS.value: "power sums",
        module.PRODUCTS.value: "products",
        module.LOG_PRODUCTS.value: "log products",
        module.NON_FINITE.value: "non-finite",
    }
    return [names[code] for code in route.tolist()]


def _bits(value: float) -> int:
    """The bit pattern of a float64, for the kernels' `_float64`."""
    return struct.unpack("<q", struct.pack("<d", value))[0]


def _next_power_of_2(value: int) -> int:
    """The smallest power of two >= value."""
    return 1 << max(0, math.ceil(math.log2(value)))


@torch.library.custom_op("smooth_topk::triton_loss_and_grad", mutates_args=())
def loss_and_grad(
    scores: torch.Tensor,
    labels: torch.Tensor,
    margins: torch.Tensor,
    k: int,
    tau: float,
    target: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row loss (B,) and dL_i/ds_i (B, C) by the Triton kernels."""
    loss, grad, _ = _launch(
        scores.contiguous(), labels.contiguous(), margins.contiguous(), k, tau, target
    )
    return loss, grad


@loss_and_grad.register_fake
def _(scores, labels, margins, k, tau, target):
    loss_dtype = torch.float64 if scores.dtype == torch.float64 else torch.float32
    return scores.new_empty(scores.shape[0], dtype=loss_dtype), torch.empty_like(scores)


register_loss_autograd(loss_and_grad)


def target_for(dtype: torch.dtype) -> float:
    """The relative accuracy a power-sum row must be proven to meet for scores of `dtype`."""
    return TARGET.get(dtype, TARGET[torch.float32])
