"""Several processes training one run (DistributedDataParallel), however they were started:
torchrun, submitit (Hydra's submitit_local and submitit_slurm launchers, `tasks_per_node` > 1
or `nodes` > 1), or a plain `srun`.  Rank 0 writes the run folder and talks to W&B.

torchrun exports the variables of PyTorch's `env://` rendezvous itself.  Under submitit and
srun, the job's description comes from submitit's job environment (ranks, task count, host
names), and this module exports the same variables from it before joining the group.
"""

import os
import zlib
from dataclasses import dataclass

import torch
import torch.distributed as dist

from topk_repro.engine.threads import env_count

PORTS = (20000, 60000)  # the rendezvous port of a submitit/srun job is drawn from its job id


@dataclass
class Processes:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launcher: str = "single"  # single | torchrun | submitit | srun

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _job_environment():
    """submitit's description of the job this process belongs to (a submitit job, or one task
    of a plain `srun` step), or None outside both."""
    if os.environ.get("SUBMITIT_EXECUTOR"):
        import submitit

        return "submitit", submitit.JobEnvironment()
    if env_count(os.environ, "SLURM_STEP_NUM_TASKS", 1) > 1:  # srun started several tasks
        from submitit.slurm.slurm import SlurmJobEnvironment

        return "srun", SlurmJobEnvironment()
    return None


def launch_description() -> Processes:
    """This process's rank among the processes started together (not yet joined)."""
    if env_count(os.environ, "WORLD_SIZE", 1) > 1:
        return Processes(
            env_count(os.environ, "RANK", None),
            env_count(os.environ, "WORLD_SIZE", 1),
            env_count(os.environ, "LOCAL_RANK", 0),
            "torchrun",
        )
    found = _job_environment()
    if found is None:
        return Processes()
    launcher, job = found
    if job.num_tasks == 1:
        return Processes(launcher=launcher)
    return Processes(job.global_rank, job.num_tasks, job.local_rank, launcher)


def _export_rendezvous(processes: Processes) -> None:
    """MASTER_ADDR/PORT, RANK, WORLD_SIZE and LOCAL_RANK for `env://` from the job's
    description (submitit and srun do not set them)."""
    _, job = _job_environment()
    low, high = PORTS
    port = low + zlib.crc32(str(job.job_id).encode()) % (high - low)
    os.environ.update(
        MASTER_ADDR=job.hostnames[0],
        MASTER_PORT=os.environ.get("MASTER_PORT", str(port)),
        RANK=str(processes.rank),
        WORLD_SIZE=str(processes.world_size),
        LOCAL_RANK=str(processes.local_rank),
    )


def join_processes(processes: Processes, device_type: str) -> None:
    """Join the process group of the processes `launch_description` found (nothing to join for
    a single one)."""
    if processes.world_size == 1:
        return
    if processes.launcher != "torchrun":
        _export_rendezvous(processes)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def share_buffers_of_rank_zero(model: torch.nn.Module) -> None:
    """Give every process rank 0's buffers (BatchNorm's running statistics). DDP broadcasts them
    at the start of each training forward, so after an epoch each rank holds the statistics of
    its own last batch; evaluating then would measure a model that no checkpoint holds (rank 0
    saves its own). Parameters need nothing: their gradients are averaged."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)
