"""Train one run: `python src/train.py [experiment=...] [key=value ...]` (Hydra).

The same command as `topk-train`: compose the config, then the engine builds data, model and
loss, trains, and records everything in the run folder (see `topk_repro/cli.py` and the README).
"""

from topk_repro.cli import main

if __name__ == "__main__":
    main()
