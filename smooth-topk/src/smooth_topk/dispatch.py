"""Which implementation computes the loss: the one place that decides.

Three implementations, named as the environment variable SMOOTH_TOPK_IMPL names them:

- `triton`: the Triton kernels (`triton_kernel/`: launcher and kernels), for CUDA tensors
  (and CPU tensors under TRITON_INTERPRET=1, Triton's interpreter: for tests, slow), k <= 100;
- `cpu_kernel`: the compiled C++ kernel (`cpu_kernel/`: launcher and C++ source), for CPU
  float32/float64 tensors, k <= 10, where a C++ compiler built it;
- `pytorch`: PyTorch operations only (`pytorch/`: power sums, product tree, log space), any
  device and dtype, no compiler.

SMOOTH_TOPK_IMPL=auto (the default, or unset) takes the first that serves the call in that
order (Triton only on CUDA); naming one forces it, and a call it cannot serve is an error saying
why.  SMOOTH_TOPK_NO_KERNEL=1, an older switch, means `pytorch`.  The variable is read at every
call (`use` sets it for a block), and torch.compile takes it as a constant when it compiles.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from smooth_topk import cpu_kernel, triton_kernel
from smooth_topk.constants import CPU_KERNEL_MAX_K, TRITON_MAX_K

VARIABLE = "SMOOTH_TOPK_IMPL"
LEGACY_VARIABLE = "SMOOTH_TOPK_NO_KERNEL"
IMPLEMENTATIONS = ("triton", "cpu_kernel", "pytorch")
CHOICES = ("auto", *IMPLEMENTATIONS)


def selected() -> str:
    """The implementation asked for: `auto` or one of IMPLEMENTATIONS."""
    value = os.environ.get(VARIABLE, "").strip().lower()
    if not value:
        legacy = os.environ.get(LEGACY_VARIABLE, "") not in ("", "0")
        return "pytorch" if legacy else "auto"
    if value not in CHOICES:
        raise ValueError(f"{VARIABLE}={value!r} is not one of {', '.join(CHOICES)}")
    return value


@contextmanager
def use(name: str) -> Iterator[None]:
    """Within this block SMOOTH_TOPK_IMPL is `name` (to compare implementations)."""
    if name not in CHOICES:
        raise ValueError(f"{VARIABLE} must be one of {', '.join(CHOICES)}, got {name!r}")
    previous = os.environ.get(VARIABLE)
    os.environ[VARIABLE] = name
    try:
        yield
    finally:
        if previous is None:
            del os.environ[VARIABLE]
        else:
            os.environ[VARIABLE] = previous


@torch.compiler.assume_constant_result  # torch.compile takes the choice as a constant
def _selected() -> str:
    return selected()


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the CPU kernel and the PyTorch paths compute scores of `dtype` in (half
    precision in float32; the Triton kernels read every dtype as it is)."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _serves(name: str, scores: torch.Tensor, k: int) -> bool:
    if name == "triton":
        return triton_kernel.usable(scores, k)
    if name == "cpu_kernel":
        return cpu_kernel.usable(scores.device.type, compute_dtype(scores.dtype), k)
    return True


def _why_not(name: str, scores: torch.Tensor, k: int) -> str:
    where = f"{scores.device.type}, {scores.dtype}, k={k}"
    if name == "triton":
        return (
            f"the Triton kernels cannot serve these scores ({where}; they need k <= "
            f"{TRITON_MAX_K} and CUDA tensors): {triton_kernel.status()}"
        )
    return (
        f"the compiled CPU kernel cannot serve these scores ({where}; it needs CPU "
        f"float32/float64 with k <= {CPU_KERNEL_MAX_K} and a C++ compiler): {cpu_kernel.status()}"
    )


def choose(scores: torch.Tensor, k: int) -> str:
    """The implementation that computes the loss of these scores with this k (ValueError when
    the one forced by SMOOTH_TOPK_IMPL cannot serve them)."""
    choice = _selected()
    if choice != "auto":
        if not _serves(choice, scores, k):
            raise ValueError(f"{VARIABLE}={choice}, but {_why_not(choice, scores, k)}")
        return choice
    if scores.is_cuda and _serves("triton", scores, k):
        return "triton"
    if _serves("cpu_kernel", scores, k):
        return "cpu_kernel"
    return "pytorch"


def implementation_in_use(
    device: str | torch.device, k: int, dtype: torch.dtype = torch.float32
) -> str:
    """Which implementation computes the loss of `dtype` scores on `device` with this k:
    "triton", "cpu_kernel" or "pytorch" (for run records and logs)."""
    return choose(torch.empty(0, k + 1, device=device, dtype=dtype), k)
