#!/usr/bin/env bash
# The wheels scripts/gpu_checks.sh installs on a lent GPU machine, which has Python 3.12, torch,
# Triton, tqdm and pandas but neither this project's packages nor Hydra (the device README's
# KINDS.md lists what it has): this checkout's two packages and Hydra's three, all pure Python,
# built here into .whl/ (kept out of git through .git/info/exclude). Needs setuptools >= 77 and a
# package registry (antlr4's runtime is published as a source archive only).
# Usage: bash scripts/gpu_wheels.sh, then carry .whl with the checkout to the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
rm -rf .whl && mkdir .whl
hydra=$($python -c 'import hydra; print(hydra.__version__)')
omegaconf=$($python -c 'import omegaconf; print(omegaconf.__version__)')
$python -m pip wheel -q --no-deps --no-build-isolation -w .whl ./smooth-topk . \
    "hydra-core==$hydra" "omegaconf==$omegaconf" antlr4-python3-runtime==4.9.3
exclude=$(git rev-parse --git-path info/exclude)
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo /.whl/ >>"$exclude"
ls .whl
