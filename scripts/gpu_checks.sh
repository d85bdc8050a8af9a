#!/usr/bin/env bash
# The GPU checks this project cannot run in CI, as one short script for a lent GPU machine:
#   1. the CUDA tests of the loss (the Triton kernels against the CPU for k up to 100, bf16
#      autocast, a training step under sync-debug mode "error", CUDA-graph capture, compile);
#   2. the loss benchmark on CUDA (every shape up to (1024, 10000), k in {1, 5, 20, 50, 100},
#      ours vs cross-entropy with CUDA events), one DenseNet-BC 40-40 training step (batch 64,
#      bf16 autocast) with CE and with L_{5,1}, and the input pipelines;
#   3. the epoch time of DenseNet-BC 40-40 on the full-size synthetic set (50,000 images,
#      batch 64, bf16 AMP) with CE and with L_{5,1}: the numbers behind the README's cost estimate.
# Usage: bash scripts/gpu_checks.sh [OUT_DIR]   (writes JSON and logs; not yet run on a GPU; each
# step is cut at its time limit, 8 minutes in all)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-results/gpu}}"
mkdir -p "$out"
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

# This checkout's two packages and Hydra: where they are not installed (a lent GPU machine has
# torch and Triton only), they come from the wheels in .whl/ (scripts/gpu_wheels.sh builds them
# where pip reaches a registry), installed without dependencies so the machine's torch stays.
if ! $python -c "import topk_repro, smooth_topk, hydra" 2>/dev/null; then
    if ! compgen -G ".whl/*.whl" >/dev/null; then
        echo "topk_repro, smooth_topk or hydra is not installed and .whl/ holds no wheels: run" \
            "'make setup', or 'bash scripts/gpu_wheels.sh' where pip works and carry .whl" >&2
        exit 2
    fi
    $python -m pip install -q --no-index --no-deps --no-cache-dir .whl/*.whl
fi

# Each step has its own time limit (seconds), so that one slow step cannot take the others' time
# and the whole script stays under 8 minutes; a step cut short leaves what it printed.
step() { local limit=$1 log=$2; shift 2; timeout "$limit" "$@" 2>&1 | tee "$out/$log" || true; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
step 120 cuda_tests.log $python -m pytest -q smooth-topk/tests -k cuda
step 200 bench_loss_cuda.log $python scripts/bench_loss.py --device cuda \
    --out "$out/bench_loss_cuda.json"
step 60 bench_step_cuda.log $python scripts/bench_step.py --device cuda --model densenet40_40 \
    --batch 64 --amp --out "$out/bench_step_cuda.json"
step 30 bench_data_cuda.log $python scripts/bench_data.py --device cuda --images 50000 \
    --batch-size 64 --out "$out/bench_data_cuda.json"
for loss in ce smooth_topk_svm; do
    step 50 "epoch_$loss.log" $python src/train.py experiment=cifar100_noise dataset=synthetic \
        loss=$loss trainer.epochs=1 trainer.amp=true trainer.channels_last=true \
        dataset.loader=device dataset.num_workers=0 paths.runs_dir="$out/runs" \
        paths.data_dir="$out/data" experiment_name=gpu_epoch_time
done
$python - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for metrics in sorted((out / "runs" / "gpu_epoch_time").glob("*/metrics.jsonl")):
    row = json.loads(metrics.read_text().splitlines()[0])
    minutes = row["epoch_time_s"] / 60
    print(f"{metrics.parent.name}: {row['epoch_time_s']:.1f} s/epoch, "
          f"{row['images_per_s']:.0f} images/s; 300 epochs = {300 * minutes / 60:.1f} GPU-hours")
PY
