"""OmegaConf resolvers used by the configs to name run folders (`register_resolvers`).

A run folder is `<runs_dir>/<experiment_name>/<run_name>-<identity digest>`: the readable name
says what a person looks for, the digest (config/identity.py) makes two runs that differ in any
setting land in two folders, so a sweep over any key never returns another run's results.
"""

from collections.abc import Callable
from pathlib import Path

from omegaconf import OmegaConf

from topk_repro.config.identity import identity_digest, run_identity

# How many processes are started together for this run (set by `register_resolvers`: the
# launcher's environment is the engine's to read, engine/distributed.py).
_world_size: Callable[[], int] | None = None


def number(value) -> str:
    """A number as run names show it, the same for 0 and 0.0 (`${num:...}`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return format(float(value), "g")


def size_tag(train_size) -> str:
    return "" if train_size in (None, "None", "null") else f"-n{train_size}"


def run_subdir(run_name, *, _root_) -> str:
    """`<run_name>-<digest of the run's identity>` (the whole config is `_root_`; the identity
    counts the processes started together for the run)."""
    if _world_size is None:
        raise RuntimeError("register_resolvers(world_size) must run before configs are resolved")
    processes = _world_size()
    return f"{run_name}-{identity_digest(run_identity(_root_, processes))}"


def run_folder(run_dir, runs_dir, experiment_name, run_name, *, _root_) -> str:
    """paths.run_dir when given, else runs_dir/experiment_name/run_subdir."""
    if run_dir not in (None, "None", "null", ""):
        return str(run_dir)
    return str(Path(runs_dir) / experiment_name / run_subdir(run_name, _root_=_root_))


RESOLVERS = {
    "num": number,
    "size_tag": size_tag,
    "run_subdir": run_subdir,
    "run_folder": run_folder,
}


def register_resolvers(world_size: Callable[[], int]) -> None:
    """Make the configs' `${num:...}`, `${size_tag:...}`, `${run_subdir:...}` and
    `${run_folder:...}` resolvable (once per process; again is a no-op); `world_size()` gives
    the number of processes started together for the run (its identity counts them)."""
    global _world_size
    _world_size = world_size
    for name, function in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)
