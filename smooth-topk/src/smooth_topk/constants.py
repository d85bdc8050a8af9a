"""Facts more than one implementation relies on."""

import torch

# The largest k each implementation serves.
POWER_SUMS_MAX_K = 10  # the power sums with their error bound (PyTorch, the CPU kernel, Triton)
CPU_KERNEL_MAX_K = 10  # the compiled CPU kernel
TRITON_MAX_K = 100  # the Triton kernels (their sequential path's cost grows with k)

# The relative accuracy a row computed by power sums must be proven to have, by scores' dtype.
TARGET = {torch.float32: 1e-8, torch.float64: 1e-13}
