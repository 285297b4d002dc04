"""The inbound journal: every message the gateway accepted, and how far it got.

One SQLite database (standard library, WAL mode) in the profile's private state
directory. A message is recorded before the bot acknowledges it with 👀, and moves
``received → queued → running → answered | told`` ("told": the user was told of an
error or a refusal instead of getting an answer). It is what lets a restarted gateway
lose nothing: messages left ``received`` or ``queued`` are run again, ``running`` ones
are told their run was lost (or delivered, when tmux kept them going), each once. It
also keeps, per channel and thread, the newest message ID seen there: catch-up reads
what came after it, and the journal's message IDs make handling a message twice
impossible (:meth:`Journal.claim` says yes once per ID).

The value types the faces read (``JournalEntry``, ``ThreadCounts``) live in :mod:`~mpg_tui.core.api`.
The core uses it directly, as it uses :mod:`~mpg_tui.core.store`: it is the core's own
storage, not an outside system, and SQLite needs nothing beyond the standard library.
Writes are synchronous on the event loop on purpose: a claim must be decided before the
next await, so a message arriving live and read again by catch-up at the same moment is
handled once. The decision is a lookup; the claim's row is written a moment later, so
that its transaction (a few tenths of a millisecond) does not stand between a message
and claude's spawn: by the journal's next write or read (the turn's "running", written
right after the spawn), before the message gets its 👀, and at the latest
:data:`CLAIM_WRITE_AFTER_S` later. A gateway killed in between has not acknowledged the
message, and its cursor has not moved past it: catch-up reads it again. WAL with
``synchronous=NORMAL`` keeps other writes in the tens of microseconds
(``bench/latency.py``). SQLite's own checkpoints (copying the WAL back into the
database, with an fsync: 10 to 20 ms) would land on whichever write crossed the
threshold, so they are turned off and a :class:`_Checkpointer` thread runs them on its
own connection. A database that cannot be opened or read is moved aside as
``<name>.corrupt-<ms>`` and a fresh one started; a write that fails later (a full disk)
is logged and the gateway carries on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from mpg_tui.core.api import JournalEntry, MessageState, ThreadCounts
from mpg_tui.core.clock import Clock
from mpg_tui.core.plain import plain
from mpg_tui.core.ports import Attachment, InboundMessage

log = logging.getLogger(__name__)

CLAIM_WRITE_AFTER_S = 0.01
"""The longest a claimed message waits for its row when nothing else writes first."""
CHECKPOINT_EVERY = 200
"""Writes between two checkpoints (each message makes about five): the WAL stays a few MB."""

FINAL_STATES: frozenset[MessageState] = frozenset({"answered", "told"})
UNFINISHED_STATES: tuple[MessageState, ...] = ("received", "queued", "running")
KEEP_FINISHED_MS = 7 * 24 * 3600 * 1000
"""Answered and told messages are forgotten after this long (their IDs are older than any catch-up)."""
PREVIEW_CHARS = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL,
    project_key TEXT NOT NULL,
    thread_id TEXT,
    session_key TEXT,
    state TEXT NOT NULL,
    author TEXT NOT NULL,
    preview TEXT NOT NULL,
    message TEXT NOT NULL,
    received_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_state ON messages(state);
CREATE INDEX IF NOT EXISTS messages_thread ON messages(thread_id);
CREATE TABLE IF NOT EXISTS cursors (
    channel_id TEXT PRIMARY KEY,
    last_message_id TEXT NOT NULL,
    parent_id TEXT,
    updated_at REAL NOT NULL
);
"""


_SELECT_ENTRIES = (
    "SELECT message_id, channel_id, project_key, thread_id, session_key, state, author, preview, "
    "received_at, updated_at, message FROM messages "
)


@dataclass(frozen=True)
class Cursor:
    channel_id: str
    last_message_id: str
    parent_id: str | None
    updated_at: float


@dataclass(frozen=True)
class _Claim:
    msg: InboundMessage
    project_key: str
    thread_id: str | None
    at: float


def _bucket(state: str) -> str:
    """The :class:`ThreadCounts` field a state is counted in."""
    return "waiting" if state in ("received", "queued") else state


def _encode(msg: InboundMessage) -> str:
    return json.dumps(plain(msg), ensure_ascii=False, separators=(",", ":"))


def _decode(raw: str) -> InboundMessage:
    data: dict[str, Any] = json.loads(raw)
    data["attachments"] = tuple(Attachment(**a) for a in data.get("attachments", ()))
    data["role_ids"] = tuple(data.get("role_ids", ()))
    data["role_names"] = tuple(data.get("role_names", ()))
    return InboundMessage(**data)


class Journal:
    """The journal database; ``path=None`` keeps it in memory (tests, gateways built without one)."""

    def __init__(self, path: Path | None, clock: Clock) -> None:
        self.path = path
        self._clock = clock
        self._failing = False
        self._db = self._open()
        # Per thread (the channel, for a message answered there): counts by bucket, read once
        # and then kept up to date by every write. The faces ask for them on every event, and
        # a GROUP BY over a week of messages would cost milliseconds each time.
        self._tallies: dict[str, dict[str, int]] | None = None
        self._counts: dict[str, ThreadCounts] = {}
        self._writes = 0
        self._claims: dict[str, _Claim] = {}
        """Claimed, not yet written (see :meth:`write_claims`)."""
        self._claims_timer: asyncio.TimerHandle | None = None
        self.checkpointer = _Checkpointer(path) if path is not None else None

    # -- opening --------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            return self._connect(":memory:")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect(str(self.path))
        except sqlite3.DatabaseError as exc:
            aside = self._set_aside()
            log.error("The message journal %s could not be read (%s); moved aside as %s", self.path, exc, aside)
            return self._connect(str(self.path))

    def _connect(self, where: str) -> sqlite3.Connection:
        db = sqlite3.connect(where, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it, off the loop
            db.executescript(_SCHEMA)
            row = db.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {row[0] if row else 'no answer'}")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _set_aside(self) -> Path:
        assert self.path is not None
        stamp = int(self._clock.now() * 1000)
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        self.path.replace(aside)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                side.replace(aside.with_name(aside.name + suffix))
        return aside

    def close(self) -> None:
        self.write_claims()
        if self.checkpointer is not None:
            self.checkpointer.stop()
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # leave no WAL behind
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """A write that fails is logged (once until one succeeds again) and never raised."""
        try:
            yield
        except sqlite3.Error as exc:
            if not self._failing:
                log.error("The message journal could not %s: %s (carrying on without it)", what, exc)
            self._failing = True
            self._tallies = None  # counted again from the database when next asked
        else:
            self._failing = False
            self._writes += 1
            if self._writes >= CHECKPOINT_EVERY and self.checkpointer is not None:
                self._writes = 0
                self.checkpointer.request()

    # -- recording ------------------------------------------------------------------------

    def claim(self, msg: InboundMessage, project_key: str, *, thread_id: str | None = None) -> bool:
        """Record ``msg`` as received (in ``thread_id``, when known already); False when it was
        recorded before (handle it no more).

        Decided at once; the row follows (see the module docstring). When the journal
        cannot be read or written the message is handled all the same (True): answering
        without a record beats dropping it.
        """
        if msg.id in self._claims:
            return False
        try:
            known = self._db.execute("SELECT 1 FROM messages WHERE message_id = ?", (msg.id,)).fetchone()
        except sqlite3.Error as exc:
            log.warning("reading the message journal failed: %s", exc)
            known = None
        if known is not None:
            return False
        self._claims[msg.id] = _Claim(msg, project_key, thread_id, self._clock.now())
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside a loop (tests, tools): nothing to wait for
            self.write_claims()
        else:
            if self._claims_timer is None:
                self._claims_timer = loop.call_later(CLAIM_WRITE_AFTER_S, self.write_claims)
        return True

    def write_claims(self) -> None:
        """Write the rows of the messages claimed since the last write (every other read and
        write of the journal does it first)."""
        if self._claims_timer is not None:
            self._claims_timer.cancel()
            self._claims_timer = None
        if not self._claims:
            return
        claims, self._claims = self._claims, {}
        written: list[_Claim] = []
        with self._writing("record a message"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for claim in claims.values():
                    msg = claim.msg
                    cursor = self._db.execute(
                        "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, NULL, 'received', ?, ?, ?, ?, ?)",
                        (
                            msg.id,
                            msg.channel_id,
                            claim.project_key,
                            claim.thread_id,
                            msg.author_name,
                            " ".join(msg.content.split())[:PREVIEW_CHARS],
                            _encode(msg),
                            claim.at,
                            claim.at,
                        ),
                    )
                    if cursor.rowcount == 1:
                        self._advance(msg.channel_id, msg.id, msg.parent_channel_id, claim.at)
                        written.append(claim)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            for claim in written:
                where = claim.thread_id if claim.thread_id is not None else claim.msg.channel_id
                self._count(where, "received", 1)

    def saw(self, channel_id: str, message_id: str, parent_id: str | None = None) -> None:
        """Catch-up in ``channel_id`` starts after ``message_id`` from now on (if it is newer)."""
        self.write_claims()
        with self._writing("move a channel's cursor"):
            self._advance(channel_id, message_id, parent_id, self._clock.now())

    def _advance(self, channel_id: str, message_id: str, parent_id: str | None, now: float) -> None:
        # One statement (it runs in every claim, ahead of claude's spawn). The WHERE says
        # the ID is newer: snowflakes grow with time, so a longer one is newer and equal
        # lengths compare as text.
        self._db.execute(
            "INSERT INTO cursors VALUES (?, ?, ?, ?) ON CONFLICT(channel_id) DO UPDATE SET "
            "last_message_id = excluded.last_message_id, parent_id = COALESCE(excluded.parent_id, parent_id), "
            "updated_at = excluded.updated_at "
            "WHERE length(excluded.last_message_id) > length(last_message_id) OR "
            "(length(excluded.last_message_id) = length(last_message_id) "
            "AND excluded.last_message_id > last_message_id)",
            (channel_id, message_id, parent_id, now),
        )

    def mark(
        self,
        message_id: str,
        state: MessageState,
        *,
        thread_id: str | None = None,
        session_key: str | None = None,
    ) -> None:
        """Move a message on; a final state is never left again."""
        if state not in get_args(MessageState):
            raise ValueError(f"unknown message state {state!r}")
        self.write_claims()
        with self._writing("update a message"):
            before = None
            if self._tallies is not None:
                before = self._db.execute(
                    "SELECT COALESCE(thread_id, channel_id), channel_id, state FROM messages WHERE message_id = ?",
                    (message_id,),
                ).fetchone()
            cursor = self._db.execute(
                "UPDATE messages SET state = ?, thread_id = COALESCE(?, thread_id), "
                "session_key = COALESCE(?, session_key), updated_at = ? "
                "WHERE message_id = ? AND state NOT IN ('answered', 'told')",
                (state, thread_id, session_key, self._clock.now(), message_id),
            )
            if before is not None and cursor.rowcount:
                self._count(before[0], before[2], -1)
                self._count(thread_id if thread_id is not None else before[0], state, 1)

    def mark_running_of(self, session_key: str, state: MessageState) -> int:
        """Settle the messages whose run of ``session_key`` was in progress (a recovered tmux run)."""
        self.write_claims()
        with self._writing("update a session's messages"):
            cursor = self._db.execute(
                "UPDATE messages SET state = ?, updated_at = ? WHERE session_key = ? AND state = 'running'",
                (state, self._clock.now(), session_key),
            )
            self._tallies = None  # rare (start-up): counted again when next asked
            return cursor.rowcount
        return 0

    def prune(self) -> int:
        """Forget finished messages older than :data:`KEEP_FINISHED_MS`."""
        self.write_claims()
        cutoff = self._clock.now() - KEEP_FINISHED_MS / 1000
        with self._writing("prune"):
            cursor = self._db.execute(
                "DELETE FROM messages WHERE state IN ('answered', 'told') AND updated_at < ?", (cutoff,)
            )
            self._db.execute("DELETE FROM cursors WHERE updated_at < ?", (cutoff,))
            self._tallies = None
            return cursor.rowcount
        return 0

    # -- reading --------------------------------------------------------------------------

    def entry(self, message_id: str) -> JournalEntry | None:
        rows = self._select("WHERE message_id = ?", (message_id,))
        return rows[0] if rows else None

    def unfinished(self) -> list[JournalEntry]:
        """Messages not yet answered or told, in the order they were received."""
        return self._select("WHERE state IN ('received', 'queued', 'running') ORDER BY received_at, rowid", ())

    def recent(self, limit: int = 100) -> list[JournalEntry]:
        """The newest ``limit`` messages, newest first."""
        return self._select("ORDER BY received_at DESC, rowid DESC LIMIT ?", (limit,))

    def counts(self) -> dict[str, ThreadCounts]:
        """Per thread (the channel, for a message answered there): messages by state."""
        self.write_claims()
        if self._tallies is None:
            tallies: dict[str, dict[str, int]] = {}
            try:
                rows = self._db.execute(
                    "SELECT COALESCE(thread_id, channel_id), state, COUNT(*) FROM messages GROUP BY 1, 2"
                ).fetchall()
            except sqlite3.Error as exc:
                log.warning("reading the message journal failed: %s", exc)
                return {}
            for where, state, count in rows:
                tally = tallies.setdefault(where, {})
                bucket = _bucket(state)
                tally[bucket] = tally.get(bucket, 0) + count
            self._tallies = tallies
            self._counts = {where: ThreadCounts(**tally) for where, tally in tallies.items()}
        return dict(self._counts)

    def _count(self, where: str, state: str, delta: int) -> None:
        """Keep the counts (once read) in step with a write: ``delta`` messages of ``where`` in ``state``."""
        if self._tallies is None:
            return
        tally = self._tallies.setdefault(where, {})
        bucket = _bucket(state)
        tally[bucket] = tally.get(bucket, 0) + delta
        if not tally[bucket]:
            del tally[bucket]
        if tally:
            self._counts[where] = ThreadCounts(**tally)
        else:
            del self._tallies[where]
            self._counts.pop(where, None)

    def cursor(self, channel_id: str) -> str | None:
        self.write_claims()
        try:
            row = self._db.execute("SELECT last_message_id FROM cursors WHERE channel_id = ?", (channel_id,)).fetchone()
        except sqlite3.Error as exc:
            log.warning("reading the message journal failed: %s", exc)
            return None
        return str(row[0]) if row else None

    def threads(self, since: float, limit: int) -> list[Cursor]:
        """Threads (cursors with a parent) active since ``since``, most recent first."""
        self.write_claims()
        try:
            rows = self._db.execute(
                "SELECT channel_id, last_message_id, parent_id, updated_at FROM cursors "
                "WHERE parent_id IS NOT NULL AND updated_at >= ? ORDER BY updated_at DESC LIMIT ?",
                (since, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            log.warning("reading the message journal failed: %s", exc)
            return []
        return [Cursor(*row) for row in rows]

    def _select(self, where: str, args: tuple[object, ...]) -> list[JournalEntry]:
        # ``where`` is always one of this module's literal clauses; values go through ``args``.
        self.write_claims()
        query = _SELECT_ENTRIES + where
        try:
            rows = self._db.execute(query, args).fetchall()
        except sqlite3.Error as exc:
            log.warning("reading the message journal failed: %s", exc)
            return []
        return [
            JournalEntry(
                message_id=row[0],
                channel_id=row[1],
                project_key=row[2],
                thread_id=row[3],
                session_key=row[4],
                state=row[5],
                author=row[6],
                preview=row[7],
                received_at=row[8],
                updated_at=row[9],
                message=_decode(row[10]),
            )
            for row in rows
        ]


class _Checkpointer:
    """Copies the journal's WAL back into its database on a thread of its own.

    ``PASSIVE`` checkpoints never wait for the gateway's connection nor block it: what a
    write is doing at that moment is left for the next one. A failure is logged once;
    the WAL then grows until a checkpoint succeeds (or the journal is closed).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wanted = threading.Event()
        self._stopping = False
        self._failing = False
        self.done = 0
        """Checkpoints run (tests wait for it with :attr:`ran`)."""
        self.ran = threading.Condition()
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        if self._thread is None:  # started by the first request: a journal written little never needs it
            self._thread = threading.Thread(target=self._run, name="journal-checkpoint", daemon=True)
            self._thread.start()
        self._wanted.set()

    def stop(self) -> None:
        self._stopping = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                try:
                    if db is None:
                        db = sqlite3.connect(str(self._path), isolation_level=None)
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self._failing = False
                except sqlite3.Error as exc:
                    if not self._failing:
                        log.warning(
                            "The message journal's checkpoint failed: %s (the WAL grows until one succeeds)", exc
                        )
                    self._failing = True
                with self.ran:
                    self.done += 1
                    self.ran.notify_all()
        finally:
            if db is not None:
                db.close()
