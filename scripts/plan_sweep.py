"""A study's runs and their estimated GPU-hours, before running it (touches no file).

    python scripts/plan_sweep.py experiment=cifar100_noise seed=0,1,2 [key=value ...]
        [--epoch-minutes 0.5]

The grid is the preset's (`hydra.sweeper.params` in configs/experiment/<study>.yaml), with any
`key=a,b` sweep on the command line replacing the preset's for that key, exactly as
`python src/train.py -m` with the same arguments (printed last) would run it.  The epoch time
comes from --epoch-minutes, or from the study's existing run folders under paths.runs_dir.
"""

import argparse

from topk_repro.sweep import plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epoch-minutes", type=float, help="GPU minutes per epoch")
    parser.add_argument("overrides", nargs="*", help="as for src/train.py -m")
    args = parser.parse_intermixed_args()
    study = plan(args.overrides)
    print(study.cost_line(args.epoch_minutes))
    for run in study.runs:
        print("  ", " ".join(f"{key}={value}" for key, value in run.items()))
    print("run it with:", " ".join(study.command))


if __name__ == "__main__":
    main()
