"""The program a tmux pane runs: one claude turn, supervised, with its outcome written down.

:class:`~mpg_tui.runners.tmux.TmuxRunner` starts it as ``<python> -I <this file> <run dir>``
(no shell, no user text on the command line). Everything else comes from the private
run directory the gateway prepared:

``request.json``  argv, cwd, environment, timeouts, and the tmux socket and wait-for channel
``prompt.txt``    claude's standard input

and it leaves there:

``pid.json``      its own pid, then claude's (the process group id) once started
``out.ndjson``    claude's standard output (the gateway tails it for progress)
``err.log``       claude's standard error
``exit.json``     how the run ended, written atomically once claude and its group are gone

Claude runs in a process group of its own, so the wrapper can end everything it
started: on SIGHUP (the tmux session was killed), SIGTERM, SIGINT (someone attached and
pressed Ctrl-C), and on its own deadline, the run's timeout plus a grace period (so an
unwatched run outlives the gateway's timeout but never runs forever), it sends the group
SIGTERM, then SIGKILL after ``kill_grace_s``. When claude exits by itself, whatever it
left in its group is ended the same way, as the direct runner does.

Last, it tells the gateway through ``tmux wait-for -S <channel>`` and exits, which
closes the pane and the tmux session. tmux remembers a signal nobody was waiting for,
so a gateway that starts waiting late still wakes up.

Besides the standard library it imports only two small modules of this package that
import nothing else (:mod:`mpg_tui.fsutil`, :mod:`mpg_tui.runners.process`), so it
starts fast; it finds them next to itself, whatever the pane's working directory or
environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import IO, Any

if not __package__:
    # Run as a file (``python -I <this file>``): -I keeps the working directory, this
    # file's directory and PYTHONPATH off sys.path, so a gateway run from a checkout that
    # is not installed would leave this package unimportable here without this.
    _PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
    if _PACKAGE_ROOT not in sys.path:
        sys.path.append(_PACKAGE_ROOT)

from mpg_tui.fsutil import atomic_write
from mpg_tui.runners.process import end_group_now, signal_group

REQUEST_FILE = "request.json"
PROMPT_FILE = "prompt.txt"
PID_FILE = "pid.json"
OUT_FILE = "out.ndjson"
ERR_FILE = "err.log"
EXIT_FILE = "exit.json"

FORMAT = 1
"""Version of the run directory's layout, written into request.json."""

_STOP_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
_SIGNAL_TIMEOUT_S = 10.0


class RequestError(Exception):
    """request.json is missing, unreadable, or lacks a field."""


class Supervisor:
    """Runs claude for one run directory and records the outcome."""

    def __init__(self, run_dir: Path, request: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.argv = _strings(request, "argv")
        self.cwd = _field(request, "cwd", str)
        self.env = _string_map(request, "env")
        self.deadline_s = float(_field(request, "timeout_s", (int, float))) + float(
            _field(request, "grace_s", (int, float))
        )
        self.kill_grace_s = float(_field(request, "kill_grace_s", (int, float)))
        self.tmux = _field(request, "tmux", str)
        self.socket = _field(request, "socket", str)
        self.channel = _field(request, "channel", str)
        self.child: subprocess.Popen[bytes] | None = None
        self.stopped_by: str | None = None
        """Why the run is being stopped: a signal name, or ``"timeout"``."""

    def run(self) -> int:
        with contextlib.suppress(OSError):  # the gateway can do without it
            _write_json(self.run_dir / PID_FILE, {"wrapper_pid": os.getpid()})
        for sig in _STOP_SIGNALS:
            signal.signal(sig, self._on_stop_signal)
        signal.signal(signal.SIGALRM, self._on_alarm)
        outcome: dict[str, Any] = {"exit_code": None, "signal": None, "timed_out": False, "cancelled": False}
        try:
            outcome.update(self._run_claude())
        except Exception as exc:  # record even our own failure: the gateway is waiting
            outcome["wrapper_error"] = f"{type(exc).__name__}: {exc}"
            if self.child is not None:
                signal_group(self.child.pid, signal.SIGKILL)
        finally:
            with contextlib.suppress(OSError):
                _write_json(self.run_dir / EXIT_FILE, outcome)
            self._signal_done()
        return 0 if "wrapper_error" not in outcome else 1

    def _run_claude(self) -> dict[str, Any]:
        with (
            _open_read(self.run_dir / PROMPT_FILE) as stdin,
            _open_private(self.run_dir / OUT_FILE) as stdout,
            _open_private(self.run_dir / ERR_FILE) as stderr,
        ):
            try:
                self.child = subprocess.Popen(
                    self.argv,
                    cwd=self.cwd,
                    env=self.env,
                    stdin=stdin,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                )
            except OSError as exc:
                return {"spawn_error": exc.strerror or str(exc), "errno": exc.errno}
            with contextlib.suppress(OSError):  # only a backstop for the gateway's kill
                _write_json(self.run_dir / PID_FILE, {"wrapper_pid": os.getpid(), "child_pid": self.child.pid})
            _say(f"claude is running (pid {self.child.pid}); its output goes to the gateway.")
            signal.setitimer(signal.ITIMER_REAL, max(self.deadline_s, 0.001))
            if self.stopped_by is not None:  # a signal came while claude was being started
                self._begin_stop()
            returncode = self.child.wait()
            signal.setitimer(signal.ITIMER_REAL, 0)
            # Whatever claude left in its group (a background server, an orphan) ends with it.
            end_group_now(self.child.pid)
        return {
            "exit_code": returncode if returncode >= 0 else None,
            "signal": -returncode if returncode < 0 else None,
            "timed_out": self.stopped_by == "timeout",
            "cancelled": self.stopped_by is not None and self.stopped_by != "timeout",
            "stopped_by": self.stopped_by,
        }

    # Signal handlers only send signals and set timers: the main thread stays in
    # child.wait(), which resumes after each handler and returns once claude is gone.

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopped_by is None:
            self.stopped_by = signal.Signals(signum).name
            self._begin_stop()

    def _on_alarm(self, _signum: int, _frame: FrameType | None) -> None:
        if self.stopped_by is None:
            self.stopped_by = "timeout"
            self._begin_stop()
        elif self.child is not None:
            signal_group(self.child.pid, signal.SIGKILL)

    def _begin_stop(self) -> None:
        if self.child is None:
            return
        signal_group(self.child.pid, signal.SIGTERM)
        signal.setitimer(signal.ITIMER_REAL, max(self.kill_grace_s, 0.001))

    def _signal_done(self) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [self.tmux, "-L", self.socket, "wait-for", "-S", self.channel],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=_SIGNAL_TIMEOUT_S,
                check=False,
            )


def read_request(run_dir: Path) -> dict[str, Any]:
    """The parsed request.json of ``run_dir``; :class:`RequestError` when unusable."""
    try:
        data = json.loads((run_dir / REQUEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RequestError(f"cannot read {REQUEST_FILE}: {exc}") from exc
    if not isinstance(data, dict):
        raise RequestError(f"{REQUEST_FILE} does not hold an object")
    return data


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RequestError(f"{REQUEST_FILE}: {name!r} is missing or has the wrong type")
    return value


def _strings(data: dict[str, Any], name: str) -> list[str]:
    value = _field(data, name, list)
    if not value or not all(isinstance(item, str) for item in value):
        raise RequestError(f"{REQUEST_FILE}: {name!r} must be a non-empty list of strings")
    return list(value)


def _string_map(data: dict[str, Any], name: str) -> dict[str, str]:
    value = _field(data, name, dict)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise RequestError(f"{REQUEST_FILE}: {name!r} must map strings to strings")
    return dict(value)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically and durably: a reader sees the old file or the whole new one."""
    atomic_write(path, json.dumps(data))


@contextlib.contextmanager
def _open_private(path: Path) -> Iterator[IO[bytes]]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(path, flags, 0o600), "wb") as file:
        yield file


@contextlib.contextmanager
def _open_read(path: Path) -> Iterator[IO[bytes]]:
    with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as file:
        yield file


def _say(line: str) -> None:
    """A line for whoever attaches to the pane; the pane may already be gone."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.write(f"mpg-tui: {line}\n")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: tmux_wrapper RUN_DIR\n")
        return 2
    os.umask(0o077)
    run_dir = Path(args[0])
    try:
        supervisor = Supervisor(run_dir, read_request(run_dir))
    except RequestError as exc:
        # Nothing can be run; say so where the gateway looks, and let it see the session end.
        with contextlib.suppress(OSError):
            _write_json(run_dir / EXIT_FILE, {"exit_code": None, "signal": None, "wrapper_error": str(exc)})
        sys.stderr.write(f"mpg-tui: {exc}\n")
        return 2
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
