"""One warm claude process: its pipes read line by line, and what the live runner keeps of it.

:class:`LineProtocol` splits claude's stdout into lines (memory stays bounded whatever it
prints), keeps a tail of stderr and notices the exit at once; :class:`WarmProcess` is a
process with what it was started with (:func:`fingerprint`) and the turn in progress
(:class:`WarmTurn`). The pool of them and the turns are :mod:`mpg_tui.runners.live`'s.
"""

from __future__ import annotations

import asyncio
import codecs
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mpg_tui.core.clock import TimerHandle
from mpg_tui.core.runner import ProgressCallback, RunRequest
from mpg_tui.runners.command import build_argv
from mpg_tui.runners.parse import MAX_LINE_CHARS, OutputParser
from mpg_tui.runners.stream_protocol import ControlChannel

log = logging.getLogger(__name__)

_STDERR_KEEP = 16 * 1024
StopReason = Literal["timeout", "cancel", "interrupt"]


class LineProtocol(asyncio.SubprocessProtocol):
    """Splits claude's stdout into lines for its owner and notices the exit at once."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.pipes_closed: asyncio.Future[None] = loop.create_future()
        self.stderr = bytearray()
        self.stderr_bytes = 0
        """Everything claude wrote to stderr, counted (only a tail is kept)."""
        self.on_line: Callable[[str], None] = lambda line: None
        self.on_exit: Callable[[], None] = lambda: None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending: list[str] = []
        self._pending_len = 0
        self._discarding = False
        self._open = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        if fd == 1:
            self._feed(self._decoder.decode(raw))
        elif fd == 2:
            self.stderr_bytes += len(raw)
            self.stderr += raw
            if len(self.stderr) > _STDERR_KEEP:
                del self.stderr[: len(self.stderr) - _STDERR_KEEP]

    def _feed(self, chunk: str) -> None:
        start = 0
        while (end := chunk.find("\n", start)) >= 0:
            piece, start = chunk[start:end], end + 1
            if self._discarding:
                self._discarding = False
                continue
            if self._pending:
                piece = "".join([*self._pending, piece])
                self._pending.clear()
                self._pending_len = 0
            self._line(piece)
        rest = chunk[start:]
        if rest and not self._discarding:
            self._pending.append(rest)
            self._pending_len += len(rest)
            if self._pending_len > MAX_LINE_CHARS:  # memory stays bounded whatever claude prints
                self._pending.clear()
                self._pending_len = 0
                self._discarding = True

    def _line(self, line: str) -> None:
        try:
            self.on_line(line)
        except Exception:
            log.exception("handling a line of claude's output failed")

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd not in self._open:
            return  # stdin
        self._open.discard(fd)
        if fd == 1:
            self._feed(self._decoder.decode(b"", final=True))
            if self._pending and not self._discarding:
                self._line("".join(self._pending))
            self._pending.clear()
        if not self._open and not self.pipes_closed.done():
            self.pipes_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)
        self.on_exit()


@dataclass(eq=False)
class WarmTurn:
    parser: OutputParser
    on_progress: ProgressCallback
    done: asyncio.Future[None]
    """Resolved when the turn's ``result`` line arrives."""
    stop_reason: StopReason | None = None
    saw_output: bool = False
    stopping: asyncio.Task[None] | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class WarmProcess:
    """One warm claude and what it was started with."""

    key: str
    fingerprint: tuple[object, ...]
    transport: asyncio.SubprocessTransport
    protocol: LineProtocol
    control: ControlChannel
    session_id: str | None
    last_used: float
    registered: Path | None = None
    turn: WarmTurn | None = None
    turns: int = 0
    idle_timer: TimerHandle | None = None
    retire: bool = False
    """Close once the turn in progress ends (released or reconfigured while busy)."""
    ending: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int:
        return self.transport.get_pid()

    @property
    def usable(self) -> bool:
        return self.ending is None and not self.retire and not self.protocol.exited.done()


def fingerprint(request: RunRequest) -> tuple[object, ...]:
    """What a process was started with, apart from the session it resumed."""
    argv = build_argv(dataclasses.replace(request, session_id=None), live=True)
    return (tuple(argv), str(request.cwd), tuple(sorted((request.env or {}).items())))
