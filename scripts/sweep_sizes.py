"""Table 2: CE and L_{5,0.1} on ImageNet with 64, 128, 320, 640 images per class and all.

python scripts/sweep_sizes.py [--seeds 0] [--launcher ...] [--data DIR] [--dry-run] [...]
"""

import sys

from topk_repro.sweep import launch, parser


def main() -> int:
    args = parser(__doc__.splitlines()[0]).parse_args()
    grid = ["loss=ce,smooth_topk_svm", "dataset.train_per_class=64,128,320,640,null"]
    return launch("imagenet_subsets", grid, [], args, epochs=120)


if __name__ == "__main__":
    sys.exit(main())
