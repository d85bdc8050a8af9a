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


def processes_on_node(world_size: int, environ: Mapping[str, str]) -> int:
    """How many processes of this run share this node: torchrun's LOCAL_WORLD_SIZE, else the
    run's processes over SLURM's node count."""
    if environ.get("LOCAL_WORLD_SIZE"):
        return max(1, int(environ["LOCAL_WORLD_SIZE"]))
    nodes = int(environ.get("SLURM_JOB_NUM_NODES") or environ.get("SLURM_NNODES") or 1)
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
