"""Train one run: `python src/train.py [experiment=...] [key=value ...]` (Hydra).

Compose the config, then hand it to the engine, which builds data, model and loss, trains,
and records everything in the run folder (see README, "The run folder").
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

import engine.naming  # noqa: E402,F401  (registers the run-folder resolvers)
from engine.fit import run  # noqa: E402


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    job_number = hydra_cfg.job.num if hydra_cfg.mode.name == "MULTIRUN" else None
    run(cfg, Path(hydra_cfg.runtime.output_dir), job_number=job_number)


if __name__ == "__main__":
    main()
