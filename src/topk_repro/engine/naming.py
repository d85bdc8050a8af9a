"""OmegaConf resolvers used by the configs to name run folders (registered once, on import)."""

from pathlib import Path

from omegaconf import OmegaConf


def size_tag(train_size) -> str:
    return "" if train_size in (None, "None", "null") else f"-n{train_size}"


def run_folder(run_dir, runs_dir, experiment_name, run_name) -> str:
    """paths.run_dir when given, else runs_dir/experiment_name/run_name."""
    if run_dir not in (None, "None", "null", ""):
        return str(run_dir)
    return str(Path(runs_dir) / experiment_name / run_name)


for _name, _function in (("size_tag", size_tag), ("run_folder", run_folder)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _function)
