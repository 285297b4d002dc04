"""The recent core events, numbered and serialized once, for every control client.

The journal listens to the bus and gives each event the next sequence number. A moment
later it copies the state the event left behind (the session, thread chain and totals it
touched) and wakes the streams: once the code that published it has finished its step
(``call_soon``) while a stream waits for it, else after :data:`FLUSH_UNWATCHED_S`, in one
batch, so that a gateway nobody watches does none of this work between a message and
claude's spawn, or between claude's exit and the reply. A stream that starts, or starts
waiting, flushes first. Each line is serialized once: when a stream first sends it, or by
the journal itself shortly after (see :class:`Entry`). A client resumes with ``since=N`` and
gets every line after ``N`` still in the ring; if ``N`` fell out of the ring (or comes
from another gateway instance), it is told to fetch a fresh snapshot instead. Memory is
bounded by the ring, never by how slow a client is.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections import deque
from collections.abc import Callable, Iterable

from mpg_tui.control import protocol
from mpg_tui.core.api import CoreAPI, ThreadCounts
from mpg_tui.core.events import (
    BudgetContinued,
    BudgetPaused,
    BudgetWarning,
    Event,
    HandoffStep,
    HandoffStopped,
    RunFinished,
    RunRecovering,
    RunStarted,
)

log = logging.getLogger(__name__)

RING_SIZE = 4096
FLUSH_UNWATCHED_S = 0.05
"""How long events wait for their state to be copied while no stream waits for them."""
ENCODE_AFTER_S = 0.1
"""How long an event may wait, unread, before the journal serializes it itself."""
ENCODE_SLICE = 16
"""Events serialized per pass of the loop when the journal does it itself (about 0.5 ms)."""
_TOTALS_EVENTS = (RunStarted, RunRecovering, RunFinished)
_CHAIN_EVENTS = (RunStarted, RunFinished, HandoffStep, HandoffStopped)
_BUDGET_EVENTS = (RunFinished, BudgetWarning, BudgetPaused, BudgetContinued)


class Entry:
    """One event of the ring: its message, serialized the first time it is asked for.

    The state in the message was copied when the event was journaled. A stream asks at
    once; otherwise the journal asks a moment later, a few events a pass, so that the
    serializing stays off the path from a message to claude's spawn and from claude's exit
    to the reply, and the ring holds compact lines rather than dicts.
    """

    __slots__ = ("_encode", "_line", "_message", "seq")

    def __init__(self, seq: int, message: protocol.JSON, encode: Callable[[protocol.JSON], bytes]) -> None:
        self.seq = seq
        self._message: protocol.JSON | None = message
        self._encode: Callable[[protocol.JSON], bytes] | None = encode
        self._line = b""

    @property
    def encoded(self) -> bool:
        return self._message is None

    @property
    def line(self) -> bytes:
        """The ``event`` stream line, newline included."""
        if self._message is not None and self._encode is not None:
            self._line = self._encode(self._message)
            self._message = self._encode = None
        return self._line


class EventJournal:
    """A bounded ring of serialized events with monotonically increasing sequence numbers."""

    def __init__(self, core: CoreAPI, *, size: int = RING_SIZE, redact: Iterable[str | None] = ()) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.core = core
        self.instance = secrets.token_hex(8)
        """Names this gateway's life: sequence numbers of another life mean nothing here."""
        self._ring: deque[Entry] = deque(maxlen=size)
        self._seq = 0
        self._published = 0
        self._pending: list[tuple[int, Event]] = []
        self._flushing: asyncio.Handle | None = None
        self._waiting = 0
        """Streams waiting in :meth:`wait_newer`."""
        self._unencoded: deque[Entry] = deque()
        self._encoding: asyncio.Handle | None = None
        self._changed = asyncio.Event()
        self._stop: Callable[[], None] | None = None
        self._projects = [protocol.project_json(p) for p in core.projects()]
        """The projects as the stream last carried them (snapshots read them afresh)."""
        self._redact = sorted({s for s in redact if s and len(s) >= 8}, key=len, reverse=True)

    @property
    def seq(self) -> int:
        """The sequence number of the newest serialized event (0 before the first)."""
        return self._published

    def attach(self) -> None:
        if self._stop is None:
            self._stop = self.core.bus.listen(self._on_event)

    def detach(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None
        for handle in (self._encoding, self._flushing):
            if handle is not None:
                handle.cancel()
        self._encoding = self._flushing = None

    def _on_event(self, event: Event) -> None:
        self._seq += 1
        self._pending.append((self._seq, event))
        if self._flushing is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published outside a loop (tests, shutdown): serialize now
            self.flush()
            return
        if self._waiting:
            self._flushing = loop.call_soon(self.flush)
        else:
            self._flushing = loop.call_later(FLUSH_UNWATCHED_S, self.flush)

    def flush(self) -> None:
        """Journal what was published since the last flush, with the state it left."""
        if self._flushing is not None:
            self._flushing.cancel()
            self._flushing = None
        pending, self._pending = self._pending, []
        # Read once a flush, not once an event: the counts are a query over the whole journal.
        counts: dict[str, ThreadCounts] | None = None

        def message_counts() -> dict[str, ThreadCounts]:
            nonlocal counts
            if counts is None:
                counts = self.core.message_counts()
            return counts

        projects = self._projects_changed() if pending else None
        for seq, event in pending:
            try:
                message = self._message(seq, event, message_counts, projects)
                projects = None  # told once, with the first line of the flush
            except Exception:  # one odd event must not stop the journal
                log.exception("control: could not read the state of %s", event.kind)
                message = {"type": "ping"}
            entry = Entry(seq, message, self._encode_safely)
            self._ring.append(entry)
            self._unencoded.append(entry)
            self._published = seq
        if pending:
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()
            self._encode_later(ENCODE_AFTER_S)

    def _encode_later(self, delay: float) -> None:
        if self._encoding is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside a loop (tests, shutdown): serialize now
            self.encode_pending(len(self._unencoded))
            return
        self._encoding = loop.call_later(delay, self._encode_slice)

    def _encode_slice(self) -> None:
        self._encoding = None
        if self.encode_pending(ENCODE_SLICE):
            self._encode_later(0)

    @property
    def unencoded(self) -> int:
        """Events journaled whose line nobody has serialized yet."""
        return sum(1 for entry in self._unencoded if not entry.encoded)

    def encode_pending(self, limit: int) -> bool:
        """Serialize up to ``limit`` events no stream has asked for yet; whether some are left."""
        pending = self._unencoded
        while pending and limit > 0:
            entry = pending.popleft()
            if not entry.encoded:  # a stream may have asked for it already
                _ = entry.line
                limit -= 1
        while pending and pending[0].encoded:
            pending.popleft()
        return bool(pending)

    def _projects_changed(self) -> list[protocol.JSON] | None:
        """The projects, when they differ from what the stream last carried (a config reload)."""
        projects = [protocol.project_json(p) for p in self.core.projects()]
        if projects == self._projects:
            return None
        self._projects = projects
        return projects

    def _message(
        self,
        seq: int,
        event: Event,
        message_counts: Callable[[], dict[str, ThreadCounts]],
        projects: list[protocol.JSON] | None = None,
    ) -> protocol.JSON:
        message: protocol.JSON = {"type": "event", "seq": seq, "event": protocol.event_json(event)}
        if projects is not None:
            message["projects"] = projects
        key = getattr(event, "key", None)
        if isinstance(key, str):
            info = self.core.session(key)
            message["session"] = protocol.session_json(info) if info is not None else None
        if isinstance(event, _CHAIN_EVENTS):
            found = [c for c in self.core.chains() if c.thread_id == event.thread_id]
            message["chain"] = protocol.chain_json(found[-1]) if found else None
        if isinstance(event, _TOTALS_EVENTS):
            message["totals"] = protocol.totals_json(self.core.totals())
        if isinstance(event, _BUDGET_EVENTS):
            message["budgets"] = protocol.budgets_json(self.core.budgets())
        thread_id = getattr(event, "thread_id", None)
        if isinstance(thread_id, str):
            counts = message_counts().get(thread_id)
            if counts is not None:
                message["messages"] = protocol.counts_json({thread_id: counts})
        return message

    def _encode_safely(self, message: protocol.JSON) -> bytes:
        try:
            return self._encode(message)
        except Exception:  # one odd event must not stop a stream
            log.exception("control: could not serialize event %s", message.get("seq"))
            return self._encode({"type": "ping"})

    def _encode(self, message: protocol.JSON) -> bytes:
        return (self.redact(protocol.dumps(message)) + "\n").encode()

    def redact(self, text: str) -> str:
        """``text`` with every secret (the bot and dashboard tokens) blanked out."""
        for secret in self._redact:
            text = text.replace(secret, "[redacted]")
        return text

    def after(self, since: int) -> list[Entry] | None:
        """Entries newer than ``since``, oldest first; None when some of them are gone (resync)."""
        if since > self._published or since < 0:
            return None
        if since == self._published:
            return []
        if not self._ring or self._ring[0].seq > since + 1:
            return None
        # Sequence numbers are dense in the ring, so the start is found by arithmetic.
        start = since + 1 - self._ring[0].seq
        return list(itertools.islice(self._ring, start, None))

    async def wait_newer(self, than: int) -> None:
        """Return once an event newer than ``than`` is serialized."""
        if self._pending:
            self.flush()  # published while nobody waited: not held back any longer
        self._waiting += 1
        try:
            while self._published <= than:
                await self._changed.wait()
        finally:
            self._waiting -= 1
