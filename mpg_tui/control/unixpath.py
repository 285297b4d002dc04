"""Unix socket paths longer than the kernel's ``sun_path`` limit (108 bytes on Linux).

A profile's run directory can sit deep in a home or temporary folder. Rather than move
the socket somewhere predictable, a long path is reached through the process's own open
handle on its directory (``/proc/self/fd/N/name``), which is short and means the same file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

SUN_PATH_MAX = 107
"""Bytes of a socket path, without the terminating NUL."""


@contextlib.contextmanager
def bindable_path(path: Path) -> Iterator[str]:
    """A name for ``path`` that ``bind``/``connect`` accept, valid inside the ``with`` block."""
    text = os.fspath(path)
    if len(os.fsencode(text)) <= SUN_PATH_MAX:
        yield text
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        short = f"/proc/self/fd/{fd}/{path.name}"
        if len(os.fsencode(short)) > SUN_PATH_MAX:
            raise OSError(f"socket name too long: {path.name}")
        yield short
    finally:
        os.close(fd)
