"""A SLURM request checked against the cluster before any job is submitted.

SLURM accepts a job asking for more CPUs per node than any node has and leaves it pending for
good (reason PartitionConfig), while the launching command waits without a word.  The SLURM
launcher presets (configs/launcher/slurm_*.yaml, submitit_slurm.yaml) register
`SlurmRequestCheck`: when the multirun starts, the request is compared with the nodes `sinfo`
reports, and one that no node can satisfy stops the command, naming the setting.
"""

import re
import shutil
import subprocess
from dataclasses import dataclass

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


@dataclass(frozen=True)
class Node:
    partition: str
    default: bool  # the partition a job without `partition` goes to
    cpus: int
    memory_mb: int
    gpus: int


def _gpu_count(gres: str) -> int:
    """GPUs in a GRES column such as 'gpu:4', 'gpu:a100:4(S:0-1)' or '(null)'."""
    total = 0
    for item in gres.split(","):
        match = re.match(r"gpu(?::[^:(]+)?:(\d+)", item.strip())
        if match:
            total += int(match.group(1))
    return total


def parse_sinfo(text: str) -> list[Node]:
    """The nodes of `sinfo -h -N -o '%P|%c|%m|%G'` output."""
    nodes = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4:
            continue
        partition, cpus, memory, gres = parts
        nodes.append(
            Node(
                partition.rstrip("*"),
                partition.endswith("*"),
                int(re.sub(r"\D", "", cpus) or 0),
                int(re.sub(r"\D", "", memory) or 0),
                _gpu_count(gres),
            )
        )
    return nodes


def cluster_nodes() -> list[Node] | None:
    """The cluster's nodes as sinfo reports them, or None where sinfo is absent or fails."""
    if shutil.which("sinfo") is None:
        return None
    try:
        found = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%P|%c|%m|%G"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_sinfo(found.stdout)


# The launcher's sizes that SLURM would pass on unchanged, and their least sensible value.
LEAST = {"timeout_min": 1, "nodes": 1, "tasks_per_node": 1, "cpus_per_task": 1}


def value_problems(launcher: DictConfig | dict) -> list[str]:
    """Sizes no cluster can honour: a time, a node, task or CPU count below 1, no memory."""
    get = launcher.get
    problems = []
    for key, least in LEAST.items():
        value = get(key)
        if value is not None and not (isinstance(value, int) and value >= least):
            problems.append(f"hydra.launcher.{key}={value}: must be a whole number >= {least}")
    memory = get("mem_gb")
    if memory is not None and not (isinstance(memory, (int, float)) and memory > 0):
        problems.append(f"hydra.launcher.mem_gb={memory}: must be a number > 0")
    return problems


def request_problems(launcher: DictConfig | dict, nodes: list[Node]) -> list[str]:
    """Why no node of the requested partition can run the job (empty when one can)."""
    get = launcher.get
    partition = get("partition")
    candidates = [n for n in nodes if (n.partition == partition if partition else n.default)]
    where = f"partition {partition}" if partition else "the default partition"
    if not candidates:
        known = sorted({n.partition for n in nodes})
        return [f"hydra.launcher.partition={partition}: no such partition (sinfo: {known})"]
    problems = []
    wanted_nodes = int(get("nodes") or 1)
    if wanted_nodes > len(candidates):
        problems.append(
            f"hydra.launcher.nodes={wanted_nodes}, but {where} has {len(candidates)} nodes"
        )
    tasks = int(get("tasks_per_node") or 1)
    cpus = tasks * int(get("cpus_per_task") or 1)
    memory_mb = int(float(get("mem_gb") or 0) * 1024)
    gpus = int(get("gpus_per_node") or 0)
    if all(n.cpus < cpus for n in candidates):
        most = max(n.cpus for n in candidates)
        problems.append(
            f"hydra.launcher.cpus_per_task={get('cpus_per_task')} x tasks_per_node={tasks} = "
            f"{cpus} CPUs per node, but no node of {where} has more than {most}"
        )
    if all(n.memory_mb < memory_mb for n in candidates):
        most = max(n.memory_mb for n in candidates) / 1024
        problems.append(
            f"hydra.launcher.mem_gb={get('mem_gb')}, but no node of {where} has more than "
            f"{most:.0f} GB"
        )
    if all(n.gpus < gpus for n in candidates):
        most = max(n.gpus for n in candidates)
        problems.append(
            f"hydra.launcher.gpus_per_node={gpus}, but no node of {where} has more than {most} "
            "GPUs (CPU nodes: launcher=slurm_cpu)"
        )
    return problems


class SlurmRequestCheck(Callback):
    """Refuse, before the first job is submitted, a SLURM request that no node can run; and a
    SLURM launcher preset used without -m, which would train on this machine instead."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        choice = config.hydra.runtime.choices.get("launcher")
        raise SystemExit(
            f"launcher={choice} submits SLURM jobs only in a multirun: add -m "
            "(python src/train.py -m ...). Without it this run would train on this machine, "
            "and no job would be submitted."
        )

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        launcher = OmegaConf.to_container(config.hydra.launcher, resolve=True)
        problems = value_problems(launcher)
        nodes = cluster_nodes()
        if nodes:  # without sinfo, SLURM itself will judge what the nodes can run
            problems += request_problems(launcher, nodes)
        if problems:
            raise SystemExit(
                "this SLURM request can never start:\n  "
                + "\n  ".join(problems)
                + "\nResize it in `resources` (configs/train.yaml; the launcher presets read it) "
                "or pick another partition (hydra.launcher.partition)."
            )
