"""The CPU's intra-op thread count: set by the engine, recorded per segment.

The count changes a CPU run's numbers (reductions split differently), so it is never left to
chance: `trainer.cpu_threads` sets it, and run.json records it for every segment (a resume under
another count says so, like a change of loss implementation).  `auto` takes, in order: an
OMP_NUM_THREADS the user set; SLURM's CPUs per task; else the CPUs this process may run on,
shared out between the processes of the run on this node (each gets its share, none
oversubscribes the cores).
"""

import os
from collections.abc import Mapping

import torch


def env_count(environ: Mapping[str, str], name: str, default: int | None) -> int:
    """The whole number an environment variable (torchrun's, SLURM's) holds, `default` when it
    is unset or empty (None: it must be set); ValueError naming the variable otherwise."""
    text = environ.get(name, "").strip()
    if not text:
        if default is None:
            raise ValueError(f"the environment variable {name} must be set (torchrun sets it)")
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"the environment variable {name}={text!r} is not a whole number (torchrun or "
            "SLURM set it; correct or unset it)"
        ) from None


def processes_on_node(world_size: int, environ: Mapping[str, str]) -> int:
    """How many processes of this run share this node: torchrun's LOCAL_WORLD_SIZE, else the
    run's processes over SLURM's node count."""
    if environ.get("LOCAL_WORLD_SIZE", "").strip():
        return max(1, env_count(environ, "LOCAL_WORLD_SIZE", 1))
    nodes = env_count(environ, "SLURM_JOB_NUM_NODES", 0) or env_count(environ, "SLURM_NNODES", 1)
    return max(1, -(-world_size // max(1, nodes)))


def auto_threads(cpus: int, sharing: int, environ: Mapping[str, str]) -> int:
    """The count `auto` chooses for a process that may run on `cpus` CPUs shared by `sharing`
    processes of the run."""
    for variable in ("OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"):
        if environ.get(variable, "").strip().isdigit() and int(environ[variable]) > 0:
            return int(environ[variable])
    return max(1, cpus // sharing)


def set_cpu_threads(setting, world_size: int) -> int:
    """Apply `trainer.cpu_threads` (auto or a positive count) and return the count in use."""
    if setting == "auto":
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        count = auto_threads(cpus or 1, processes_on_node(world_size, os.environ), os.environ)
    else:
        count = int(setting)
    torch.set_num_threads(count)
    return torch.get_num_threads()
