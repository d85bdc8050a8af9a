"""SIGINT / SIGTERM become a flag the loop checks, so a run stops at a safe point."""

import contextlib
import signal


class Interrupted(Exception):
    """Raised by the loop after SIGINT or SIGTERM."""


class StopFlag:
    """Context manager installing handlers for `signals`; `raise_if_set` is called between
    steps."""

    def __init__(self, signals: tuple = (signal.SIGINT, signal.SIGTERM)):
        self.signal_name: str | None = None
        self.signals = signals
        self._previous = {}

    def _handle(self, number, _frame):
        self.signal_name = signal.Signals(number).name

    def __enter__(self) -> "StopFlag":
        for number in self.signals:
            # Outside the main thread (some launchers) handlers cannot be set: keep the defaults.
            with contextlib.suppress(ValueError):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def raise_if_set(self) -> None:
        if self.signal_name:
            raise Interrupted(self.signal_name)
