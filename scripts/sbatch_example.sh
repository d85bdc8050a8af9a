#!/usr/bin/env bash
# A run as a plain SLURM batch job, without Hydra's launcher: srun starts one process per task
# and they train the run together (DistributedDataParallel; gloo on CPUs, NCCL on GPUs).
#
#   sbatch scripts/sbatch_example.sh experiment=cifar100_noise loss=ce dataset.noise.p=0.4
#
# Without srun, `python src/train.py` inside an allocation of 2 tasks is ONE process.  Each
# process takes --cpus-per-task CPUs as its thread count (trainer.cpu_threads=auto).  A job
# pre-empted with SIGTERM stops at the next step (final.json: interrupted) and, requeued
# (--requeue), resumes from last.pt; its folder is pinned so that the requeued job finds it.
#SBATCH --job-name=smooth-topk
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=2
#SBATCH --cpus-per-task=1
#SBATCH --mem=2G
#SBATCH --time=01:00:00
#SBATCH --requeue
#SBATCH --output=slurm-%j.out
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
PYTHON=${PYTHON:-.venv/bin/python}
RUN_DIR=${RUN_DIR:-runs/sbatch/${SLURM_JOB_ID:-local}}
srun "$PYTHON" src/train.py "paths.run_dir=$RUN_DIR" "$@"
