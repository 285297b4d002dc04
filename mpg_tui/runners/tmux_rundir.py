"""A tmux run's directory as the gateway reads it: the request, the wrapper's pids and
outcome, and claude's output as it grows.

The wrapper (:mod:`mpg_tui.runners.tmux_wrapper`) writes these files; every reader here
tolerates a file that is missing, half-written or not what it should be. Blocking: the
runner calls these in worker threads.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpg_tui.runners.tmux_wrapper import REQUEST_FILE, RequestError

log = logging.getLogger(__name__)

_READ_SIZE = 256 * 1024


@dataclass(frozen=True)
class RunRecord:
    """What the run directory says about a run (its request.json)."""

    key: str
    thread_id: str
    project_key: str
    cwd: Path
    started_at: float
    """Wall-clock time the run was started (``clock.now()``)."""
    timeout_s: float
    session_id: str | None
    tmux_session: str
    executable: str
    channel: str

    @classmethod
    def from_request(cls, data: Mapping[str, Any]) -> RunRecord:
        def text(name: str) -> str:
            value = data.get(name)
            if not isinstance(value, str):
                raise RequestError(f"{REQUEST_FILE}: {name!r} is missing or not text")
            return value

        def number(name: str) -> float:
            value = data.get(name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise RequestError(f"{REQUEST_FILE}: {name!r} is missing or not a number")
            return float(value)

        argv = data.get("argv")
        if not isinstance(argv, list) or not argv or not isinstance(argv[0], str):
            raise RequestError(f"{REQUEST_FILE}: 'argv' is missing")
        session_id = data.get("session_id")
        return cls(
            key=text("key"),
            thread_id=text("thread_id"),
            project_key=text("project_key"),
            cwd=Path(text("cwd")),
            started_at=number("started_at"),
            timeout_s=number("timeout_s"),
            session_id=session_id if isinstance(session_id, str) else None,
            tmux_session=text("tmux_session"),
            executable=argv[0],
            channel=text("channel"),
        )


class Tail:
    """Reads a growing file from where it left off, decoding UTF-8 across reads."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read(self) -> str:
        try:
            with self._path.open("rb") as file:
                file.seek(self._offset)
                data = file.read(_READ_SIZE)
        except FileNotFoundError:
            return ""
        self._offset += len(data)
        return self._decoder.decode(data)

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


def exit_code(outcome: Mapping[str, Any] | None) -> int | None:
    """The exit status in exit.json, in the direct runner's convention: negative for a signal."""
    if outcome is None:
        return None
    code, sig = outcome.get("exit_code"), outcome.get("signal")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(sig, int) and not isinstance(sig, bool):
        return -sig
    return None


def pid_field(data: Mapping[str, Any] | None, name: str) -> int | None:
    """A pid from pid.json; None unless it is one that could be signalled (over 1)."""
    value = (data or {}).get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else None


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_tail(path: Path, limit: int) -> str:
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - limit))
            return file.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def remove(path: Path) -> None:
    try:
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        elif path.is_dir():
            shutil.rmtree(path)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)
