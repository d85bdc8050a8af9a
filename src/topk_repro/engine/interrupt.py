"""Signals become a flag the loop checks, so a run stops at a safe point.

Two kinds: signals that stop the run (SIGINT, SIGTERM: `Interrupted`), and signals a launcher
handles itself (submitit's SIGUSR2: checkpoint, requeue the job, exit).  The second kind is
noted and passed on to the launcher's handler at the next safe point, so the run knows it was
pre-empted and the launcher never cuts a step or a checkpoint in half.
"""

import contextlib
import signal
from collections.abc import Callable
from datetime import datetime, timezone


class Interrupted(Exception):
    """Raised by the loop after SIGINT or SIGTERM."""


class StopFlag:
    """Context manager installing handlers for `signals` (and `passed_on`); `raise_if_set` is
    called between steps."""

    def __init__(
        self, signals: tuple = (signal.SIGINT, signal.SIGTERM), passed_on: tuple = ()
    ) -> None:
        self.signal_name: str | None = None
        self.passed_on_name: str | None = None  # a launcher's signal, once received
        self.passed_on_at: str | None = None  # when (UTC, ISO 8601)
        self.signals = signals
        self.passed_on = passed_on
        self._previous: dict[int, Callable | int | None] = {}
        self._pending: int | None = None

    def _handle(self, number, _frame):
        self.signal_name = signal.Signals(number).name

    def _note(self, number, _frame):
        self.passed_on_name = signal.Signals(number).name
        self.passed_on_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._pending = number

    def __enter__(self) -> "StopFlag":
        for number in self.signals:
            # Outside the main thread (some launchers) handlers cannot be set: keep the defaults.
            with contextlib.suppress(ValueError):
                self._previous[number] = signal.signal(number, self._handle)
        for number in self.passed_on:
            with contextlib.suppress(ValueError):
                self._previous[number] = signal.signal(number, self._note)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def raise_if_set(self) -> None:
        """At a safe point: hand a noted launcher signal to the launcher's handler (which may
        end the process), or raise Interrupted after a stopping signal."""
        if self._pending is not None:
            number, self._pending = self._pending, None
            handler = self._previous.get(number)
            if callable(handler):
                handler(number, None)
        if self.signal_name:
            raise Interrupted(self.signal_name)


def stop_flag(launcher: str) -> StopFlag:
    """SIGINT and SIGTERM stop a run at the next step, except SIGTERM under submitit: there a
    pre-emption may send SIGTERM before USR2, and submitit ignores it on purpose so that its
    USR2 handler can checkpoint and requeue the job (which resumes from last.pt).  That USR2 is
    noted (the run records it was pre-empted) and handed to submitit at the next step."""
    if launcher == "submitit":
        return StopFlag((signal.SIGINT,), passed_on=(signal.SIGUSR2,))
    return StopFlag((signal.SIGINT, signal.SIGTERM))


def exit_code_of(stopped: Interrupted) -> int:
    """The shell's code for a process ended by the signal: 128 + 15 (SIGTERM), 128 + 2."""
    return 143 if str(stopped) == "SIGTERM" else 130
