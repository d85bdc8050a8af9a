"""The library's fixtures: `implementation` runs a test through each implementation of the loss
(the compiled CPU kernel, the PyTorch paths, the Triton kernels), `compiled_kernel` and
`triton_kernels` ask for one.

Markers (registered here, so the library's suite runs on its own): `interpreter` is put on
every test that reaches the Triton kernels in the interpreter, `slow` on compiles and subprocesses,
and `cuda` tests are skipped without a GPU.  The quick suite is `-m "not slow and not interpreter"`.

Without a GPU the Triton kernels run in Triton's interpreter (on CPU tensors), so that these
tests check them on every machine.  The switch must be on before Triton is first imported (the
test modules import it through torch.compile's machinery), hence here; conftest.py at the
repository root does the same when both suites run in one process."""

import os
import shutil

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from smooth_topk import cpu_kernel, dispatch, triton_kernel  # noqa: E402  (after the switch)

# The kernels are made interpreted or compiled when their module is first imported: import it
# now, under the switch, so that no test which sets TRITON_INTERPRET=0 decides it for the others.
triton_kernel.kernels()

HAS_COMPILER = any(shutil.which(name) for name in ("c++", "g++", "clang++"))
MARKERS = {
    "slow": "a subprocess, a compile or a long case (deselect with -m 'not slow')",
    "interpreter": "runs the Triton kernels in Triton's interpreter (slow on the CPU)",
    "cuda": "needs a CUDA GPU (skipped without one)",
}


def pytest_configure(config):
    for name, meaning in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {meaning}")


def _reaches_the_interpreter(item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    asked = "triton_kernels" in item.fixturenames
    return (
        asked
        or params.get("implementation") == "triton"
        or params.get("kernel") == "triton_kernels"
    )


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    interpreted = not torch.cuda.is_available()
    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if interpreted and _reaches_the_interpreter(item):
            item.add_marker(pytest.mark.interpreter)
        if not torch.cuda.is_available() and item.get_closest_marker("cuda"):
            item.add_marker(no_gpu)


@pytest.fixture
def compiled_kernel():
    """The compiled CPU kernel; a test needing it fails if a compiler is here but the build
    does not work, and is skipped where there is no compiler."""
    if dispatch.selected() == "pytorch":
        pytest.skip("the environment selects the PyTorch implementation")
    if cpu_kernel.load() is None:
        if HAS_COMPILER:
            pytest.fail("a C++ compiler is here but the CPU kernel did not build")
        pytest.skip("no C++ compiler: the CPU kernel cannot be built")


@pytest.fixture
def triton_kernels(monkeypatch):
    """SMOOTH_TOPK_IMPL=triton for CPU tensors: the kernels in Triton's interpreter (conftest.py
    turns it on where there is no GPU); skipped without Triton."""
    if triton_kernel.kernels() is None:
        pytest.skip(triton_kernel.status())
    if not triton_kernel.interpreted():
        pytest.skip("CPU tensors reach the Triton kernels only with TRITON_INTERPRET=1")
    import triton.language as tl

    if type(tl.zeros).__name__ == "JITFunction":
        pytest.fail(
            "TRITON_INTERPRET=1 was set after Triton was imported, so its library functions "
            "are not interpreted: set it before (see tests/conftest.py)"
        )
    monkeypatch.setenv("SMOOTH_TOPK_IMPL", "triton")


@pytest.fixture(params=["compiled", "portable", "triton"])
def implementation(request):
    """Run a test through the compiled CPU kernel, the PyTorch paths alone and the Triton
    kernels (interpreted)."""
    if request.param == "portable":
        with dispatch.use("pytorch"):
            yield request.param
    else:
        request.getfixturevalue(
            "compiled_kernel" if request.param == "compiled" else "triton_kernels"
        )
        yield request.param
