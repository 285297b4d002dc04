"""One running instance per profile, through a locked PID file.

The running gateway holds an exclusive ``flock`` on its PID file for as long as it
lives. The kernel drops the lock when the process ends however it ends, so a PID file
left behind by a crash is recognised as stale (unlocked) and taken over, and a
recycled PID can never make a dead instance look alive.

MPG's own PID file is honoured too (:class:`MpgPidFile`): see the section at the end.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from pathlib import Path
from types import TracebackType

from mpg_tui.fsutil import atomic_write


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


# -- MPG's PID file -------------------------------------------------------------------------
#
# MPG writes its PID to $MPG_HOME/mpg.pid (mpg-<profile>.pid for a named profile) and
# takes no lock, so liveness is the PID's. Honouring it both ways keeps one bot per
# profile whichever of the two gateways starts second, and lets either `stop` end the other.


class MpgRunning(AlreadyRunning):
    """MPG (or something holding its PID file) runs for this profile."""

    def __init__(self, path: Path, pid: int) -> None:
        self.path = path
        self.pid = pid
        RuntimeError.__init__(
            self,
            f"MPG is already running for this profile (PID {pid}, PID file {path}); "
            "stop it first (`mpg-tui stop` stops it too)",
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")  # a zombie has ended


def live_pid_in(path: Path) -> int | None:
    """The PID an unlocked PID file (MPG's) names, if that process is alive and not us."""
    pid = read_pid(path)
    if pid is None or pid == os.getpid() or not _alive(pid):
        return None
    return pid


class MpgPidFile:
    """``with MpgPidFile(path):`` refuses to run beside a live MPG and writes our PID for MPG to see.

    Taken after our own :class:`PidFile`, so a second mpg-tui is refused by that first.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._held = False

    def acquire(self) -> None:
        pid = live_pid_in(self.path)
        if pid is not None:
            raise MpgRunning(self.path, pid)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, f"{os.getpid()}\n", durable=False)
        self._held = True

    def release(self) -> None:
        """Remove the file, unless someone else has written theirs over ours meanwhile."""
        if self._held and read_pid(self.path) == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self._held = False

    def __enter__(self) -> MpgPidFile:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def stop_pid(pid: int, timeout: float = 10.0, *, poll_interval: float = 0.05) -> bool:
    """SIGTERM ``pid`` (MPG's) and wait up to ``timeout`` s for it to end; False if it still runs.

    Raises PermissionError when the process belongs to someone else.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    # Another process, not our child: no event to await, so poll it.
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_interval)
    return True
