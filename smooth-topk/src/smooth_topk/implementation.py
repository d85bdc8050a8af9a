"""The one switch that chooses how the loss is computed: the environment variable
SMOOTH_TOPK_IMPL.

- `auto` (default): the compiled CPU kernel where it serves (CPU tensors, float32/float64,
  k <= 10, a C++ compiler), the PyTorch implementation everywhere else;
- `cpu_kernel`: the compiled kernel, and an error where it cannot serve;
- `pytorch`: the PyTorch implementation only (any device; no compiler needed);
- `triton`: the GPU kernels planned in the project's issue 9; not part of this release, so
  asking for them is an error rather than a silent fallback.

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
    if value == "triton":
        raise ValueError(
            f"{VARIABLE}=triton: the Triton kernels are not part of this release yet; use "
            f"{VARIABLE}=auto (CUDA tensors take the PyTorch implementation)"
        )
    return value
