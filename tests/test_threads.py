"""One config, one result on the CPU: the engine sets the intra-op thread count from
`trainer.cpu_threads`, shares the node's CPUs out between a run's processes, and records the
count per segment."""

import json

import pytest
import torch

from helpers import compose_config, tiny_overrides
from topk_repro.config.identity import identity_digest, run_identity
from topk_repro.config.settings import check_config
from topk_repro.engine import fit
from topk_repro.engine.threads import auto_threads, processes_on_node


@pytest.fixture
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("cpus", "world_size", "environ", "expected"),
    [
        (16, 1, {}, 16),
        (16, 2, {}, 8),  # two processes on one node: half each
        (16, 4, {"SLURM_JOB_NUM_NODES": "2"}, 8),  # 2 per node
        (16, 2, {"LOCAL_WORLD_SIZE": "2"}, 8),  # torchrun
        (3, 2, {}, 1),
        (16, 2, {"SLURM_CPUS_PER_TASK": "3"}, 3),  # SLURM's allocation per task
        (16, 2, {"OMP_NUM_THREADS": "1", "SLURM_CPUS_PER_TASK": "3"}, 1),  # the user's choice
    ],
)
def test_auto_shares_the_cpus_out_between_the_processes_on_a_node(
    cpus, world_size, environ, expected
):
    assert auto_threads(cpus, processes_on_node(world_size, environ), environ) == expected


def test_the_thread_count_is_set_and_recorded_per_segment(tmp_path, keep_threads, capsys):
    folder = tmp_path / "run"
    cfg = compose_config(tiny_overrides(tmp_path, "trainer.epochs=1", "trainer.cpu_threads=1"))
    fit.run(cfg, folder)
    assert torch.get_num_threads() == 1
    record = json.loads((folder / "run.json").read_text())
    assert record["cpu_threads"] == 1 and record["segments"][0]["cpu_threads"] == 1

    (folder / "final.json").unlink()  # as if it had died after its last epoch
    again = compose_config(tiny_overrides(tmp_path, "trainer.epochs=1", "trainer.cpu_threads=2"))
    assert fit.run(again, folder)["status"] == "finished"  # the same run: not in the identity
    assert "cpu_threads 1 -> 2" in capsys.readouterr().out
    record = json.loads((folder / "run.json").read_text())
    assert [s["cpu_threads"] for s in record["segments"]] == [1, 2]


def test_the_thread_count_is_not_part_of_the_identity(tmp_path):
    one, auto = (
        compose_config(tiny_overrides(tmp_path, f"trainer.cpu_threads={value}"))
        for value in (1, "auto")
    )
    assert identity_digest(run_identity(one)) == identity_digest(run_identity(auto))


@pytest.mark.parametrize("value", ["0", "many", "-2"])
def test_a_thread_count_that_cannot_be_right_is_refused(tmp_path, value):
    with pytest.raises(ValueError, match="trainer.cpu_threads must be auto or a count >= 1"):
        check_config(compose_config(tiny_overrides(tmp_path, f"trainer.cpu_threads={value}")))


@pytest.mark.parametrize("variable", ["LOCAL_WORLD_SIZE", "SLURM_JOB_NUM_NODES", "SLURM_NNODES"])
def test_a_count_in_the_environment_that_is_not_a_number_is_named(variable):
    from topk_repro.engine.threads import processes_on_node

    with pytest.raises(ValueError, match=f"the environment variable {variable}='abc' is not a"):
        processes_on_node(4, {variable: "abc"})


def test_torchruns_variables_are_read_as_numbers_naming_a_bad_one(monkeypatch):
    from topk_repro.engine.distributed import launch_description

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ValueError, match="the environment variable RANK='one'"):
        launch_description()
    monkeypatch.delenv("RANK")
    with pytest.raises(ValueError, match="RANK must be set"):
        launch_description()
