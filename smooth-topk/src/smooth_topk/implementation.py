"""The one switch that chooses how the loss is computed: the environment variable
SMOOTH_TOPK_IMPL.

- `auto` (default): on CUDA the Triton kernels (`triton_kernel.py`, k <= 100, Triton
  installed); on the CPU the compiled kernel where it serves (float32/float64, k <= 10, a C++
  compiler); the PyTorch implementation everywhere else;
- `triton`: the Triton kernels, and an error where they cannot serve; with TRITON_INTERPRET=1
  they also run on CPU tensors (Triton's interpreter: for tests, slow);
- `cpu_kernel`: the compiled CPU kernel, and an error where it cannot serve;
- `pytorch`: the PyTorch implementation only (any device; no compiler needed).

SMOOTH_TOPK_NO_KERNEL=1, the older switch, still means `pytorch`.
"""

import os

VARIABLE = "SMOOTH_TOPK_IMPL"
LEGACY_VARIABLE = "SMOOTH_TOPK_NO_KERNEL"
CHOICES = ("auto", "triton", "cpu_kernel", "pytorch")


def selected() -> str:
    """The implementation asked for (read at every call, so a test or a job can change it)."""
    value = os.environ.get(VARIABLE, "").strip().lower()
    if not value:
        legacy = os.environ.get(LEGACY_VARIABLE, "") not in ("", "0")
        return "pytorch" if legacy else "auto"
    if value not in CHOICES:
        raise ValueError(f"{VARIABLE}={value!r} is not one of {', '.join(CHOICES)}")
    return value
