"""Without a GPU, the Triton kernels run in Triton's interpreter (on CPU tensors), so that the
tests check them on every machine.  Set before any kernel is defined."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# The fixtures that run a test through each implementation, for every test module.
from implementations import compiled_kernel, implementation, triton_kernels  # noqa: E402, F401
