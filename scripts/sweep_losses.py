"""Every top-k and noise-robust loss under one protocol: losses x noise p x seeds.

python scripts/sweep_losses.py [--losses ce,gce,...] [--noise 0.0,0.2,...] [--seeds 0,1,2]
    [--demo] [--launcher basic|joblib|submitit_slurm] [--data DIR] [--dry-run] [overrides...]

Without --demo: the paper's CIFAR-100 protocol (experiment=compare_losses, 300 epochs on a GPU).
With --demo: the CPU-sized version on the synthetic set (experiment=compare_losses_demo).
Then `scripts/make_tables.py` builds the comparison table, the paired differences to CE with
their 95% intervals, the plot and the claims.
"""

import sys

from topk_repro.sweep import launch, parser

LOSSES = (
    "ce",
    "ce_label_smoothing",
    "smooth_topk_svm",
    "hard_topk_svm",
    "truncated_topk_entropy",
    "lml",
    "noised_topk",
    "noised_topk_imbalanced",
    "gce",
)
NOISE_LEVELS = "0.0,0.2,0.4,0.6,0.8"
DEMO_NOISE_LEVELS = "0.0,0.6"


def main() -> int:
    arguments = parser(__doc__.splitlines()[0])
    arguments.set_defaults(seeds="0,1,2")
    arguments.add_argument("--losses", default=",".join(LOSSES), help="loss configs to compare")
    arguments.add_argument("--noise", default=None, help="noise levels, comma-separated")
    arguments.add_argument("--demo", action="store_true", help="the CPU-sized version")
    args = arguments.parse_args()
    noise = args.noise or (DEMO_NOISE_LEVELS if args.demo else NOISE_LEVELS)
    experiment, epochs = ("compare_losses_demo", 4) if args.demo else ("compare_losses", 300)
    grid = [f"loss={args.losses}", f"dataset.noise.p={noise}"]
    return launch(experiment, grid, [], args, epochs=epochs)


if __name__ == "__main__":
    sys.exit(main())
