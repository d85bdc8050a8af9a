"""Compile the Triton kernels ahead of time for NVIDIA GPUs, without a GPU (Triton's bundled
ptxas), and print the registers and local-memory spills of each build.  Catches what the
interpreter cannot: code that does not compile.  Run by test_triton.py in a subprocess, because
the kernels must be defined with TRITON_INTERPRET unset.

    python tests/compile_triton_kernels.py [ARCH ...]     (default: 80 90)
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402

from smooth_topk.triton_kernel import _kernels as kernels  # noqa: E402

COMMON = {
    "scores": None, "labels": "*i64", "margins": "*fp64", "margin_stride": "i32",
    "loss_out": "*fp32", "grad_out": None, "pending": "*i8",
}  # fmt: skip


def signature(kernel, dtype: str) -> dict:
    extra = {
        "power_sum_kernel": {"n": "i32", "row_stride": "i32", "tau_bits": "i64",
                             "limit_bits": "i64"},
        "sequential_kernel": {"scratch": "*fp64", "batch": "i32", "n": "i32",
                              "row_stride": "i32", "tau_bits": "i64"},
    }[kernel.__name__]  # fmt: skip
    types = {**COMMON, **extra, "scores": f"*{dtype}", "grad_out": f"*{dtype}"}
    if dtype == "fp64":
        types["loss_out"] = "*fp64"
    return {**types, "K": "constexpr", "KP": "constexpr", "BLOCK": "constexpr"}


def resources(compiled) -> str:
    """The 'REG:.. LOCAL:..' line of the cubin, from Triton's bundled cuobjdump."""
    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(compiled.asm["cubin"])
        cubin.flush()
        listing = subprocess.run(
            [str(tool), "--dump-resource-usage", cubin.name], capture_output=True, text=True
        ).stdout
    return next((line.strip() for line in listing.splitlines() if "REG:" in line), "?")


def main(archs: list[int]) -> None:
    builds = [(kernels.power_sum_kernel, k, 4) for k in (1, 2, 5, 10)]
    builds += [(kernels.sequential_kernel, k, 1) for k in (2, 10, 20, 100)]
    for arch in archs:
        for kernel, k, warps in builds:
            for dtype in ("fp32", "bf16", "fp16", "fp64"):
                coefficients = 1 << (k).bit_length()  # the power of two above k
                source = triton.compiler.ASTSource(
                    kernel, signature(kernel, dtype), {"K": k, "KP": coefficients, "BLOCK": 256}
                )
                compiled = triton.compile(
                    source, target=GPUTarget("cuda", arch, 32), options={"num_warps": warps}
                )
                usage = resources(compiled)
                print(f"sm_{arch} {kernel.__name__} k={k} {dtype}: {usage}", flush=True)
                if "LOCAL:0" not in usage:
                    sys.exit(f"registers spill to local memory: {usage}")


if __name__ == "__main__":
    main([int(arch) for arch in sys.argv[1:]] or [80, 90])
