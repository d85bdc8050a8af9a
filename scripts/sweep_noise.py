"""Table 1: CE and L_{5,1} on CIFAR-100 at noise p in {0, 0.2, ..., 1.0} (12 runs per seed).

python scripts/sweep_noise.py [--noise-mode block|superclass] [--seeds 0,1,2]
    [--launcher basic|joblib|submitit_slurm] [--data DIR] [--dry-run] [hydra overrides...]
"""

import sys

from topk_repro.sweep import launch, parser

NOISE_LEVELS = "0.0,0.2,0.4,0.6,0.8,1.0"


def main() -> int:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument(
        "--noise-mode", default="block", choices=["block", "superclass", "uniform"]
    )
    args = arguments.parse_args()
    grid = ["loss=ce,smooth_topk_svm", f"dataset.noise.p={NOISE_LEVELS}"]
    fixed = [f"dataset.noise.mode={args.noise_mode}"]
    return launch("cifar100_noise", grid, fixed, args, epochs=300)


if __name__ == "__main__":
    sys.exit(main())
