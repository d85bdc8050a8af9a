#!/usr/bin/env bash
# The GPU checks this project cannot run in CI, as one short script for a lent GPU machine:
#   1. the CUDA tests of the loss (same checks as on the CPU, plus bf16 autocast);
#   2. the loss benchmark on CUDA (every shape up to (1024, 10000), k in {1, 5, 20, 50, 100},
#      ours vs cross-entropy with CUDA events), one DenseNet-BC 40-40 training step (batch 64,
#      bf16 autocast) with CE and with L_{5,1}, and the input pipelines;
#   3. the epoch time of DenseNet-BC 40-40 on the full-size synthetic set (50,000 images,
#      batch 64, bf16 AMP) with CE and with L_{5,1}: the numbers behind the README's cost estimate.
# Usage: bash scripts/gpu_checks.sh [OUT_DIR]   (writes JSON and logs; not yet run on a GPU: its
# length is an estimate, a few minutes on an H100, most of it the two epochs of step 3)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-results/gpu}}"
mkdir -p "$out"
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src:$PWD/smooth-topk/src${PYTHONPATH:+:$PYTHONPATH}"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
$python -m pytest -q smooth-topk/tests -k cuda 2>&1 | tee "$out/cuda_tests.log"
$python scripts/bench_loss.py --device cuda --out "$out/bench_loss_cuda.json" 2>&1 \
    | tee "$out/bench_loss_cuda.log"
$python scripts/bench_step.py --device cuda --model densenet40_40 --batch 64 --amp \
    --out "$out/bench_step_cuda.json" 2>&1 | tee "$out/bench_step_cuda.log"
$python scripts/bench_data.py --device cuda --images 50000 --batch-size 64 \
    --out "$out/bench_data_cuda.json" 2>&1 | tee "$out/bench_data_cuda.log"
for loss in ce smooth_topk_svm; do
    $python src/train.py experiment=cifar100_noise dataset=synthetic loss=$loss \
        trainer.epochs=1 trainer.amp=true trainer.channels_last=true dataset.loader=device \
        dataset.num_workers=0 paths.runs_dir="$out/runs" paths.data_dir="$out/data" \
        experiment_name=gpu_epoch_time 2>&1 | tee "$out/epoch_$loss.log"
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
