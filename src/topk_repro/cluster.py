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


def request_problems(launcher: DictConfig | dict, nodes: list[Node]) -> list[str]:
    """Why no node of the requested partition can run the job (empty when one can)."""
    get = launcher.get
    partition = get("partition")
    candidates = [n for n in nodes if (n.partition == partition if partition else n.default)]
    where = f"partition {partition}" if partition else "the default partition"
    if not candidates:
        known = sorted({n.partition for n in nodes})
        return [f"hydra.launcher.partition={partition}: no such partition (sinfo: {known})"]
    tasks = int(get("tasks_per_node") or 1)
    cpus = tasks * int(get("cpus_per_task") or 1)
    memory_mb = int(float(get("mem_gb") or 0) * 1024)
    gpus = int(get("gpus_per_node") or 0)
    problems = []
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
    """Refuse, before the first job is submitted, a SLURM request that no node can run."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        nodes = cluster_nodes()
        if not nodes:
            return  # no sinfo here: SLURM itself will judge the request
        launcher = OmegaConf.to_container(config.hydra.launcher, resolve=True)
        problems = request_problems(launcher, nodes)
        if problems:
            raise SystemExit(
                "this SLURM request can never start (checked against sinfo):\n  "
                + "\n  ".join(problems)
                + "\nResize it in `resources` (configs/train.yaml; the launcher presets read it) "
                "or pick another partition (hydra.launcher.partition)."
            )
