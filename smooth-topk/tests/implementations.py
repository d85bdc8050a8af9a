"""Fixtures that run a test through each implementation of the loss (import them by name)."""

import shutil

import pytest

from smooth_topk import cpu_kernel
from smooth_topk.implementation import selected as selected_implementation

HAS_COMPILER = any(shutil.which(name) for name in ("c++", "g++", "clang++"))


@pytest.fixture
def compiled_kernel():
    """The compiled CPU kernel; a test needing it fails if a compiler is here but the build
    does not work, and is skipped where there is no compiler."""
    if selected_implementation() == "pytorch":
        pytest.skip("the environment selects the PyTorch implementation")
    if cpu_kernel.load() is None:
        if HAS_COMPILER:
            pytest.fail("a C++ compiler is here but the CPU kernel did not build")
        pytest.skip("no C++ compiler: the CPU kernel cannot be built")


@pytest.fixture(params=["compiled", "portable"])
def implementation(request):
    """Run a test through the compiled CPU kernel, then through the PyTorch paths alone."""
    if request.param == "portable":
        with cpu_kernel.disabled():
            yield request.param
    else:
        request.getfixturevalue("compiled_kernel")
        yield request.param
