"""One process trains in a run folder at a time: a lock file it holds while it trains.

Two copies of one run (a sweep started twice, a job requeued while its old copy still runs)
would interleave their epochs in one metrics.jsonl.  The lock is a file created exclusively
(`O_CREAT | O_EXCL`, atomic on local disks and on NFS v3 and later, where `flock` may not
work), holding the holder's host, process id, process start time and start date.  The holder
touches it every HEARTBEAT_S seconds from a background thread.

A lock whose holder is gone is taken over, saying so: on the same host when its process no
longer exists (or its id now belongs to a newer process); from another host, whose processes
cannot be seen, when its heartbeat is older than STALE_AFTER_S.  Any other lock refuses the
second process at once, naming the folder and the holder.
"""

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

LOCK_NAME = ".run.lock"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0  # 20 missed heartbeats


class FolderBusy(Exception):
    """Another live process holds the run folder; nothing was changed in it."""


def _process_start(pid: int) -> str | None:
    """The kernel's start time of process `pid` (Linux's /proc; None elsewhere or if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19]  # field 22 of stat, counted after the command name


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    now = _process_start(pid)
    return started is None or now is None or now == started


def _holder_text(holder: dict, age_s: float) -> str:
    return (
        f"process {holder.get('pid')} on host {holder.get('host')}, since "
        f"{holder.get('since')} (last heartbeat {age_s:.0f} s ago)"
    )


def _stale_reason(holder: dict, age_s: float) -> str | None:
    """Why the holder of a lock is gone, or None when it may still be training."""
    if holder.get("host") == socket.gethostname():
        pid = holder.get("pid")
        if not isinstance(pid, int) or not _alive(pid, holder.get("process_start")):
            return "its process no longer runs on this host"
        return None
    if age_s > STALE_AFTER_S:
        return f"no heartbeat for {age_s:.0f} s (more than {STALE_AFTER_S:.0f} s)"
    return None


def _read(lock: Path) -> tuple[dict, float] | None:
    """The lock's holder and its heartbeat's age, or None when there is no lock."""
    try:
        text, mtime = lock.read_text(), lock.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(text)
    except ValueError:
        holder = {}  # torn by a crash while being written: only its age can tell
    return (holder if isinstance(holder, dict) else {}), time.time() - mtime


def _create(lock: Path, holder: dict) -> bool:
    try:
        descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as stream:
        json.dump(holder, stream)
    return True


def _take_over(lock: Path, holder: dict) -> bool:
    """Move a stale lock aside; False when another process moved or replaced it first."""
    aside = lock.with_name(f"{LOCK_NAME}.stale-{uuid.uuid4().hex[:8]}")
    try:
        lock.rename(aside)
    except FileNotFoundError:
        return False
    moved = _read(aside)
    if moved is None or moved[0] != holder:  # a fresh lock replaced the stale one: give it back
        if not lock.exists():
            aside.rename(lock)
        return False
    aside.unlink(missing_ok=True)
    return True


def acquire(folder: Path, say=print) -> dict:
    """Hold `folder`'s lock (FolderBusy when a live process holds it); returns the holder."""
    lock = Path(folder) / LOCK_NAME
    mine = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "process_start": _process_start(os.getpid()),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        "token": uuid.uuid4().hex,
    }
    for _ in range(5):  # a few rounds settle a race between two takers of one stale lock
        if _create(lock, mine):
            return mine
        found = _read(lock)
        if found is None:
            continue
        holder, age_s = found
        reason = _stale_reason(holder, age_s)
        if reason is None:
            raise FolderBusy(
                f"{folder} is in use by {_holder_text(holder, age_s)}: the same run is training "
                "there. A second copy would interleave its epochs with it; wait for it or stop "
                f"it. (A lock whose holder died is taken over: on the same host at once, from "
                f"another host after {STALE_AFTER_S:.0f} s without heartbeat.)"
            )
        if _take_over(lock, holder):
            say(f"{folder}: taking over the lock of {_holder_text(holder, age_s)}: {reason}")
    raise FolderBusy(f"{folder}: could not take its lock ({lock}); another process keeps taking it")


def release(folder: Path, holder: dict) -> None:
    """Remove the lock if it is still this holder's."""
    lock = Path(folder) / LOCK_NAME
    found = _read(lock)
    if found is not None and found[0].get("token") == holder["token"]:
        lock.unlink(missing_ok=True)


@contextmanager
def held(folder: Path, say=print) -> Iterator[None]:
    """Hold `folder` while the block runs, touching the lock every HEARTBEAT_S seconds."""
    holder = acquire(folder, say)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                os.utime(Path(folder) / LOCK_NAME)
            except OSError:
                return

    thread = threading.Thread(target=beat, name="run-folder-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        release(folder, holder)
