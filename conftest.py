"""Set-up for running both test suites in one process (`make test` runs pytest here).

Without a GPU the loss library's tests run its Triton kernels in Triton's interpreter, which
must be switched on before Triton is first imported; the framework's test modules import it
(through torch.compile's machinery) before the library's test modules are collected, so it is
switched on here.  `smooth-topk/tests/conftest.py` does the same for the library's suite
on its own."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
