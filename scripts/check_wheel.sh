#!/usr/bin/env bash
# Build the smooth-topk wheel, install it into a fresh virtual environment that holds torch (the
# version of .venv, taken from the local pip cache), ninja and pytest, and nothing else of this
# repository, then run the library's quick tests against the installed copy (the whole library
# suite runs in `make test-full`, against the editable install).
# Usage: bash scripts/check_wheel.sh   (make check-wheel; CI runs it after make test)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python=${PYTHON:-.venv/bin/python}

cp -r smooth-topk "$work/source"  # a clean copy: setuptools' build/ folder may hold stale files
rm -rf "$work/source/build" "$work/source/dist" "$work/source/src/"*.egg-info
"$python" -m pip wheel -q --no-deps "$work/source" -w "$work/dist"
wheel=$(ls "$work"/dist/smooth_topk-*.whl)
echo "built $(basename "$wheel")"
listing=$("$python" -m zipfile -l "$wheel" | awk 'NR > 1 {print $1}')  # read whole, then search
sed 's/^/  /' <<<"$listing"
grep -q "^smooth_topk/cpu_kernel/smooth_topk_cpu.cpp$" <<<"$listing"
grep -q "^smooth_topk/py.typed$" <<<"$listing"
grep -q "^smooth_topk/triton_kernel/_kernels.py$" <<<"$listing"
if grep -qE "topk_repro|^(data|engine|models|results)/" <<<"$listing"; then
    echo "the wheel holds framework files" >&2
    exit 1
fi

torch_version=$("$python" -c "import torch; print(torch.__version__.split('+')[0])")
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "torch==$torch_version" "$wheel[kernel,test]" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
cp -r smooth-topk/tests "$work/tests"
cd "$work"  # away from the checkout: nothing of it can be imported
"$work/venv/bin/python" - <<'PY'
import importlib.metadata as metadata
import smooth_topk
installed = {d.metadata["Name"] for d in metadata.distributions()}
assert "topk-repro" not in installed, installed
print(f"smooth_topk {smooth_topk.__version__} from {smooth_topk.__file__}")
assert "site-packages" in smooth_topk.__file__, smooth_topk.__file__
for name in ("topk_repro", "hydra", "omegaconf", "wandb", "pandas"):
    try:
        __import__(name)
    except ImportError:
        continue
    raise SystemExit(f"{name} is importable in the wheel's environment")
PY
"$work/venv/bin/python" -m pytest -q -ra -p no:cacheprovider "$work/tests" --rootdir "$work" \
    -m "not slow and not interpreter"
