"""Smoothing on CIFAR-100: the hard top-5 hinge and L_{5,tau}, tau in {0.01, 0.1, 1, 10}.

python scripts/sweep_tau.py [--noise 0.0] [--seeds 0] [--launcher ...] [--dry-run] [...]
"""

import sys

from topk_repro.sweep import launch, parser


def main() -> int:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--noise", default="0.0", help="noise level(s), comma-separated")
    args = arguments.parse_args()
    fixed = ["experiment_name=cifar100_tau", f"dataset.noise.p={args.noise}"]
    status = launch(
        "cifar100_noise",
        ["loss=smooth_topk_svm", "loss.tau=0.01,0.1,1.0,10.0"],
        fixed,
        args,
        epochs=300,
    )
    if status == 0:
        status = launch(
            "cifar100_noise",
            ["loss=hard_topk_svm"],
            fixed,
            args,
            epochs=300,
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
