"""Output files are written whole or not at all.

A report, a saved configuration or a plot is written to a temporary file in the target's folder
and renamed over the target once complete (``os.replace``, atomic on POSIX and Windows): a run
that fails or is interrupted half-way leaves either the old file or none, never a truncated one.

This module imports nothing else of intrain.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

__all__ = ["replacing", "write_text"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def replacing(path) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new contents to; ``path`` is replaced when the block
    ends without an exception (the temporary file is removed otherwise).

    Raises :class:`OSError` with ``filename`` set to ``path`` when its folder cannot be written.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())  # what a plain open() would have made
        try:
            os.replace(tmp, path)
        except OSError as e:  # the target is a folder, say: name it, not the temporary file
            raise OSError(e.errno, e.strerror, str(path)) from None
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all."""
    with replacing(path) as f:
        f.write(text.encode("utf-8"))
