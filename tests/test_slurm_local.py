"""scripts/slurm_local.sh touches only what it made: run in a temporary root (SLURM_LOCAL_ROOT)
with stand-in commands, so no real daemon, configuration or munge key is involved."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from helpers import ROOT

SCRIPT = ROOT / "scripts" / "slurm_local.sh"
MARK = "# written by smooth-topk's scripts/slurm_local.sh"


@pytest.fixture
def machine(tmp_path: Path) -> dict:
    """A temporary root and a PATH of stand-ins: installed SLURM and munge commands that only
    leave a note that they ran; sinfo and munge answer nothing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sbatch", "munged", "slurmctld", "slurmd", "srun", "apt-get"):
        (bin_dir / name).write_text(f"#!/bin/sh\ntouch {tmp_path}/ran-{name}\n")
    for name in ("sinfo", "munge"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 1\n")
    for path in bin_dir.iterdir():
        path.chmod(0o755)
    root = tmp_path / "root"
    root.mkdir()
    env = {**os.environ, "SLURM_LOCAL_ROOT": str(root), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return {"root": root, "env": env, "ran": lambda name: (tmp_path / f"ran-{name}").exists()}


def script(machine: dict, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), command], env=machine["env"], capture_output=True, text=True
    )


def live_process(tmp_path: Path, name: str) -> subprocess.Popen:
    """A process whose command name is `name` (a copy of sleep)."""
    binary = tmp_path / name
    shutil.copy(shutil.which("sleep"), binary)
    process = subprocess.Popen([str(binary), "60"])
    time.sleep(0.2)
    return process


def test_up_starts_nothing_on_a_configuration_it_did_not_write(machine):
    conf = machine["root"] / "etc" / "slurm" / "slurm.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("ClusterName=theirs\n")
    result = script(machine, "up")
    assert result.returncode == 1
    assert "was not written by this script: no daemon is started on it" in result.stdout
    assert conf.read_text() == "ClusterName=theirs\n"
    assert not any(machine["ran"](d) for d in ("munged", "slurmctld", "slurmd"))


def test_down_leaves_alone_the_processes_of_pid_files_it_did_not_start(machine, tmp_path):
    other = live_process(tmp_path, "slurmctld")  # a machine's own daemon, say
    try:
        for pid_file in ("run/slurmctld.pid", "run/slurmd.pid", "run/munge/munged.pid"):
            path = machine["root"] / pid_file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(str(other.pid))
        assert script(machine, "down").returncode == 0
        assert other.poll() is None  # still running
    finally:
        other.kill()
        other.wait()


def test_down_stops_what_it_started_and_never_a_reused_pid(machine, tmp_path):
    state = machine["root"] / "var" / "lib" / "smooth-topk-slurm"
    (state / "run").mkdir(parents=True)
    ours = live_process(tmp_path, "slurmctld")
    reused = live_process(tmp_path, "sleep")  # its PID once was slurmd's
    try:
        (state / "run" / "slurmctld.pid").write_text(str(ours.pid))
        (state / "run" / "slurmd.pid").write_text(str(reused.pid))
        (state / "started").write_text(
            f"slurmctld {state}/run/slurmctld.pid\nslurmd {state}/run/slurmd.pid\n"
        )
        result = script(machine, "down")
        assert result.returncode == 0 and "stopped slurmctld" in result.stdout
        assert ours.wait(timeout=10) is not None
        assert reused.poll() is None
        assert not (state / "started").exists()
    finally:
        for process in (ours, reused):
            process.kill()
            process.wait()
