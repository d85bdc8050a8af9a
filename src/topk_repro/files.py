"""The one way this framework writes a file: atomically, so no reader ever sees half of it."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

PARTIAL = ".partial"  # suffix of the temporary files of atomic writes


def write_atomically(path: Path, content: bytes | Callable[[BinaryIO], None]) -> None:
    """Write `content` (bytes, or a function writing to a binary stream) to a uniquely named
    temporary file `.<name>.*.partial` beside `path`, then rename it over `path`.  Parallel
    jobs writing the same file never see, or produce, a half-written one; a killed process
    leaves at most the temporary file (RunDir removes those when it opens its folder)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=PARTIAL)
    try:
        os.fchmod(handle, 0o644)
        with os.fdopen(handle, "wb") as stream:
            if callable(content):
                content(stream)
            else:
                stream.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
