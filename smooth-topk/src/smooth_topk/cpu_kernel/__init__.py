"""The compiled CPU kernel of the loss (`smooth_topk_cpu.cpp`, beside this file), built on first
use.

For 1 <= k <= 10 the kernel fuses what `pytorch/power_sums.py` does in a dozen PyTorch
operations into one vectorised pass per row (plus one more for the gradient, computed together
with the loss), with the same proof of accuracy.  Rows that proof rejects take exact sequential
products in the same kernel (no subtraction, slower), in log space when their coefficients leave
the float64 range.  Rows with non-finite scores are flagged and left to the PyTorch paths.

The kernel is optional: it needs a C++ compiler and ninja at first use (torch's JIT extension
builder caches the result under ~/.cache/torch_extensions, or $TORCH_EXTENSIONS_DIR).  When it
cannot be built, a RuntimeWarning says why and every call uses the PyTorch implementation, which
computes the same values.  `dispatch.py` decides when it is used (SMOOTH_TOPK_IMPL=pytorch never
builds it).
"""

import logging
import os
import platform
import shutil
import warnings
from functools import cache
from pathlib import Path
from types import ModuleType

import torch

from smooth_topk.autograd import register_loss_autograd
from smooth_topk.constants import CPU_KERNEL_MAX_K, TARGET
from smooth_topk.pytorch.log_space import gradient_with_graph

SOURCE = Path(__file__).with_name("smooth_topk_cpu.cpp")  # the kernel, beside its launcher

# Instruction sets by torch's CPU capability.  The capability is part of the build's name, so a
# build cache shared by machines of different kinds never hands one a kernel it cannot run.
_ARCH_FLAGS = {
    "AVX512": ["-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw", "-mavx2", "-mfma"],
    "AVX2": ["-mavx2", "-mfma"],
}


def _ensure_ninja_on_path() -> None:
    """torch's builder runs `ninja` from PATH; a pip-installed ninja may not be on it."""
    if shutil.which("ninja") is not None:
        return
    try:
        import ninja
    except ImportError:
        return
    os.environ["PATH"] = f"{ninja.BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"


def _build_failure_reason(error: Exception) -> str:
    """The telling line of a failed build's log ("c++: not found", "error: ..."), else its last."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    telling = [line for line in lines if "not found" in line or "error:" in line.lower()]
    return (telling or lines or [type(error).__name__])[0 if telling else -1]


@cache
def load() -> ModuleType | None:
    """The compiled kernel module, or None when it cannot be built."""
    capability = torch.backends.cpu.get_cpu_capability()
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    flags = _ARCH_FLAGS.get(capability, []) if x86 else []
    try:
        # Importing the builder on a CUDA build of torch without a GPU logs a warning about
        # CUDA_HOME that does not concern a CPU kernel.
        builder_log = logging.getLogger("torch.utils.cpp_extension")
        level = builder_log.level
        builder_log.setLevel(logging.ERROR)
        try:
            from torch.utils import cpp_extension
        finally:
            builder_log.setLevel(level)
        _ensure_ninja_on_path()
        return cpp_extension.load(
            name=f"smooth_topk_cpu_{capability.lower()}",
            sources=[str(SOURCE)],
            extra_cflags=["-O3", "-fopenmp", *flags],
            extra_ldflags=["-fopenmp"],
            verbose=False,
        )
    except Exception as error:  # no compiler, no ninja, a failed build: all mean "not available"
        reason = _build_failure_reason(error)
        warnings.warn(
            f"smooth_topk: the CPU kernel could not be built ({reason}); using the PyTorch "
            "implementation (same values, slower). Set SMOOTH_TOPK_IMPL=pytorch to skip the "
            "build.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def status() -> str:
    """One line for logs and run records: the kernel's file, or that it cannot be built."""
    module = load()
    return module.__file__ if module is not None else "not available (PyTorch implementation)"


@torch.compiler.assume_constant_result  # torch.compile takes the answer as a constant
def available() -> bool:
    """Whether the kernel is built (or can be)."""
    return load() is not None


def usable(device_type: str, dtype: torch.dtype, k: int) -> bool:
    """Whether the kernel serves scores computed in `dtype` on `device_type`: CPU,
    float32/float64, k <= CPU_KERNEL_MAX_K, and built (building it on first ask)."""
    return device_type == "cpu" and dtype in TARGET and k <= CPU_KERNEL_MAX_K and available()


def _run(scores, labels, settings: tuple, want_grad: bool) -> list[torch.Tensor]:
    """The kernel on (scores, labels) with settings (k, tau, alpha, target): loss, safe, grad.
    alpha is a float64 tensor of one margin (for every row) or one per row."""
    return load().forward(scores.detach().contiguous(), labels.contiguous(), *settings, want_grad)


def margins(alpha, device: torch.device | str = "cpu") -> torch.Tensor:
    """The kernels' margin argument (float64): a scalar as a 1-element tensor made on `device`
    (a fill, not a host-to-device copy, which would synchronise), per-row margins as they are."""
    if isinstance(alpha, torch.Tensor):
        return alpha.to(torch.float64).contiguous()
    return torch.full((1,), alpha, dtype=torch.float64, device=device)


class CpuKernelLoss(torch.autograd.Function):
    """Per-row loss and a mask of the rows computed (False: non-finite scores, left to the
    caller).  The gradient is computed with the loss (when `want_grad`) and scaled in place by
    the upstream gradient in the backward: a fresh buffer there would cost more than the
    arithmetic.  A second backward through a retained graph recomputes it."""

    @staticmethod
    def forward(ctx, scores, labels, k: int, tau: float, alpha: float, want_grad: bool):
        settings = (k, tau, margins(alpha), TARGET[scores.dtype])
        loss, safe, grad = _run(scores, labels, settings, want_grad)
        ctx.save_for_backward(scores, labels)
        ctx.settings = settings
        ctx.grad = grad if want_grad else None
        ctx.mark_non_differentiable(safe)
        return loss, safe

    @staticmethod
    def backward(ctx, grad_loss, _grad_safe):
        if torch.is_grad_enabled():  # create_graph=True: a gradient with its own graph
            scores, labels = ctx.saved_tensors
            k, tau, margins, _ = ctx.settings
            grad = gradient_with_graph(scores, labels, grad_loss, k, tau, margins)
            return grad, None, None, None, None, None
        grad, ctx.grad = ctx.grad, None
        if grad is None:
            scores, labels = ctx.saved_tensors
            grad = _run(scores, labels, ctx.settings, want_grad=True)[2]
        grad.mul_(grad_loss[:, None].to(grad.dtype))
        return grad, None, None, None, None, None


# The kernel as one operator that torch.compile can place in a graph (no graph break): the loss
# and its gradient in one call.  The kernel leaves rows with non-finite scores to its caller;
# here they give NaN, as in cross-entropy (eager calls compute them in log space).  Eager calls
# keep CpuKernelLoss, whose backward scales the gradient in place instead of allocating.
@torch.library.custom_op("smooth_topk::cpu_loss_and_grad", mutates_args=())
def loss_and_grad(
    scores: torch.Tensor,
    labels: torch.Tensor,
    margins: torch.Tensor,
    k: int,
    tau: float,
    target: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row loss (B,) and dL_i/ds_i (B, C) of float32/float64 CPU scores."""
    loss, safe, grad = _run(scores, labels, (k, tau, margins.contiguous(), target), True)
    unsafe = ~safe
    return loss.masked_fill(unsafe, float("nan")), grad.masked_fill(unsafe[:, None], float("nan"))


@loss_and_grad.register_fake
def _(scores, labels, margins, k, tau, target):
    return scores.new_empty(scores.shape[0]), torch.empty_like(scores)


register_loss_autograd(loss_and_grad)
