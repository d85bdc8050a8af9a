"""One process per run folder: a second one is refused naming the holder; a dead holder's lock
is taken over, saying so; the lock goes when its holder ends."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from helpers import compose_config, tiny_overrides
from topk_repro.engine import fit, folder_lock
from topk_repro.engine.folder_lock import LOCK_NAME, FolderBusy, acquire, held


def write_lock(folder, age_s: float = 0.0, **holder) -> None:
    lock = folder / LOCK_NAME
    lock.write_text(json.dumps(holder))
    then = time.time() - age_s
    os.utime(lock, (then, then))


def ended_process_id() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_second_holder_is_refused_naming_the_folder_and_the_holder(tmp_path):
    with held(tmp_path):
        with pytest.raises(FolderBusy) as refused:
            acquire(tmp_path)
        text = str(refused.value)
        assert str(tmp_path) in text
        assert f"process {os.getpid()} on host {socket.gethostname()}" in text
    assert not (tmp_path / LOCK_NAME).exists()  # released at the end


def test_the_lock_is_released_when_the_block_fails(tmp_path):
    with pytest.raises(RuntimeError), held(tmp_path):
        raise RuntimeError("a crash")
    acquire(tmp_path)


def test_a_lock_whose_process_ended_on_this_host_is_taken_over_saying_so(tmp_path):
    write_lock(tmp_path, host=socket.gethostname(), pid=ended_process_id(), since="then")
    said = []
    acquire(tmp_path, say=said.append)
    assert len(said) == 1 and "taking over the lock" in said[0]
    assert "its process no longer runs on this host" in said[0]
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_a_process_id_reused_by_a_newer_process_is_not_the_holder(tmp_path):
    write_lock(tmp_path, host=socket.gethostname(), pid=os.getpid(), process_start="0")
    said = []
    acquire(tmp_path, say=said.append)
    assert "no longer runs" in said[0]


def test_another_hosts_lock_is_taken_over_only_after_its_heartbeat_stops(tmp_path):
    write_lock(tmp_path, host="node-elsewhere", pid=1, since="then")
    with pytest.raises(FolderBusy, match="process 1 on host node-elsewhere"):
        acquire(tmp_path)
    write_lock(tmp_path, age_s=folder_lock.STALE_AFTER_S + 60, host="node-elsewhere", pid=1)
    said = []
    acquire(tmp_path, say=said.append)
    assert "no heartbeat for" in said[0]


def test_the_holder_keeps_its_lock_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(folder_lock, "HEARTBEAT_S", 0.05)
    with held(tmp_path):
        lock = tmp_path / LOCK_NAME
        os.utime(lock, (0, 0))
        deadline = time.time() + 10
        while lock.stat().st_mtime == 0 and time.time() < deadline:
            time.sleep(0.05)
        assert lock.stat().st_mtime > 0


def test_training_refuses_a_folder_another_live_process_holds_before_any_work(tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path, "trainer.epochs=0"))
    folder = tmp_path / "run"
    folder.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = folder_lock._process_start(other.pid)
        write_lock(folder, host=socket.gethostname(), pid=other.pid, process_start=start)
        with pytest.raises(FolderBusy, match=f"process {other.pid}"):
            fit.run(cfg, folder)
        assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]  # nothing written
    finally:
        other.kill()
        other.wait()
    fit.run(cfg, folder)  # its holder gone, the dry run takes the folder over
    assert not (folder / LOCK_NAME).exists()
