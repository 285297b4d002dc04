"""One running instance per profile, through a locked PID file.

The running gateway holds an exclusive ``flock`` on its PID file for as long as it
lives. The kernel drops the lock when the process ends however it ends, so a PID file
left behind by a crash is recognised as stale (unlocked) and taken over, and a
recycled PID can never make a dead instance look alive.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from pathlib import Path
from types import TracebackType


class AlreadyRunning(RuntimeError):
    """Another instance holds the PID file."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        who = f"PID {pid}" if pid else "another process"
        super().__init__(f"mpg-tui is already running for this profile ({who}, PID file {path}); stop it first")


def read_pid(path: Path) -> int | None:
    """The PID written in ``path``, or ``None`` if missing or unreadable."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def _is_locked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also drops the shared lock we may have taken
    return False


def running_pid(path: Path) -> int | None:
    """The PID of the live instance holding ``path``, or ``None`` when none does."""
    if not _is_locked(path):
        return None
    # Locked but empty: the holder is between locking and writing; report it as running.
    return read_pid(path) or -1


class PidFile:
    """``with PidFile(path):`` or ``acquire()``/``release()``; refuses a second instance."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Lock the file and write our PID; raises :class:`AlreadyRunning` if held elsewhere."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise AlreadyRunning(self.path, read_pid(self.path)) from None
            # The previous holder may have unlinked the file between our open and our
            # lock; then we locked an orphan inode and must start again on the new file.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            return
        raise AlreadyRunning(self.path, read_pid(self.path))

    def release(self) -> None:
        """Remove the file and drop the lock (removing first, so no one locks a dying file)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> PidFile:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def stop_running(path: Path, timeout: float = 10.0, *, poll_interval: float = 0.05) -> bool:
    """Ask the instance holding ``path`` to stop (SIGTERM) and wait up to ``timeout`` s.

    Returns True when no instance is running any more (including when none was), False
    when it is still running after ``timeout``. Raises PermissionError when the process
    belongs to someone else.
    """
    pid = running_pid(path)
    if pid is None:
        return True
    if pid > 0:
        with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
            os.kill(pid, signal.SIGTERM)
    # Waiting on another process: there is no event to await, so poll the lock (which
    # the kernel drops at exit, even while the process is an unreaped zombie).
    deadline = time.monotonic() + timeout
    while _is_locked(path):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_interval)
    return True
