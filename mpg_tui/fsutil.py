"""Writing files so that a crash never leaves half of one: the one atomic write of the package."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def atomic_write(path: Path, data: str | bytes, *, durable: bool = True) -> os.stat_result:
    """Replace ``path`` with ``data`` so a crash at any point leaves the old or the new file.

    The file is created readable by its owner only (mode 0600), and a symlink at ``path`` is
    replaced rather than followed. ``durable=False`` skips the fsyncs: the file then survives
    our process being killed (the kernel has it) but not a power cut. Returns the new file's
    stat, taken from the written descriptor.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created exclusively and never through a symlink; a random name rather than
    # tempfile.mkstemp, whose import and name generator cost more than the write itself
    # for small files (the tmux wrapper imports this module in every pane).
    temp_name = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(temp_name, _CREATE_FLAGS, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
            written = os.fstat(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    if durable:
        _fsync_dir(path.parent)
    return written


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; some filesystems refuse fsync on a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
