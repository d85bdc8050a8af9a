"""The run's console output, also kept in its folder's `train.log`."""

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


class _Tee:
    """A text stream writing to a terminal stream and to a log file."""

    def __init__(self, stream: TextIO, log: TextIO):
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.log.write(text)
        self.log.flush()  # a killed run keeps what it printed
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()
        self.log.flush()

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


@contextlib.contextmanager
def kept_in(path: Path, enabled: bool = True) -> Iterator[None]:
    """Within this block, what the process prints (stdout and stderr) is appended to `path`
    as well; a resumed run appends to the log of its earlier segments."""
    if not enabled:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as log:
        out, err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(out, log), _Tee(err, log)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = out, err


def epoch_line(epoch: int, epochs: int, row: dict) -> str:
    """An epoch's line on the console: loss, validation accuracy, noisy-label fit, lr, time."""
    memorised = row.get("memo/changed/noisy_top1")
    return (
        f"epoch {epoch}/{epochs}  loss {row['train/loss']:.4f}  "
        f"val top1 {row['val/top1']:.2f}  top5 {row['val/top5']:.2f}  "
        + (f"noisy labels fitted {memorised:.1f}%  " if memorised is not None else "")
        + f"lr {row['lr']:.4g}  {row['epoch_time_s']:.1f}s"
    )


def closing_line(best: dict, final: dict) -> str:
    """A finished run's last line: its best validation epoch and its test accuracy."""
    return (
        f"finished: best epoch {best['epoch']}, val top5 {best['val/top5']:.2f}, "
        f"test top1 {final['test/top1']:.2f}, top5 {final['test/top5']:.2f}"
    )


def show_progress(setting) -> bool:
    """trainer.progress: bars on a terminal (auto), always (true) or never (false)."""
    if setting == "auto":
        return sys.stderr.isatty()
    return bool(setting)
