"""Without a GPU, the Triton kernels run in Triton's interpreter (on CPU tensors), so that the
tests check them on every machine.  Set before any kernel is defined."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from implementations import triton_kernels  # noqa: E402, F401  (fixture, used by name)
