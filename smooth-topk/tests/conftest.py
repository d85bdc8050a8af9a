"""Without a GPU the Triton kernels run in Triton's interpreter (on CPU tensors), so that these
tests check them on every machine.  The switch must be on before Triton is first imported (the
test modules import it through torch.compile's machinery), hence here; conftest.py at the
repository root does the same when both suites run in one process."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
