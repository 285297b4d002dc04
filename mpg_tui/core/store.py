"""The write-behind store of ``sessions.json``: the claude sessions that outlive the gateway.

The file's format (MPG's entries plus ours) is :mod:`mpg_tui.core.sessions_file`.

What :class:`SessionStore` guarantees:

* Writes are atomic (temporary file in the same directory, fsync, rename, fsync of the
  directory), so a crash leaves either the old file or the new one.
* Every save merges with what is on disk: another writer's entries survive, entries we
  changed win, keys we deleted stay deleted. Then it prunes by ``sessionTtlMs`` and
  ``maxPersistedSessions`` (oldest first).
* Bursts of updates coalesce into one write; file I/O runs off the event loop.
* A corrupt file is moved aside (``sessions.json.corrupt-<ms>``) and a failed write is
  logged and retried; neither ever raises into the gateway, and memory keeps the truth.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mpg_tui.config import Defaults
from mpg_tui.core.clock import Clock, TimerHandle
from mpg_tui.core.sessions_file import (
    CorruptSessionsFile,
    StoredSession,
    parse_document,
    prune,
    render_document,
)
from mpg_tui.fsutil import atomic_write

log = logging.getLogger(__name__)

DEFAULT_TTL_MS = 604_800_000
DEFAULT_MAX_ENTRIES = 50


def _signature(st: os.stat_result) -> tuple[int, int, int]:
    # A rename always brings a new inode, so this changes whenever anyone rewrites the file.
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class _Snapshot:
    gen: int
    entries: dict[str, StoredSession]
    dirty: dict[str, int]
    deleted: frozenset[str]
    now_ms: int


@dataclass(frozen=True)
class _Written:
    seq: int
    entries: dict[str, StoredSession]


class SessionStore:
    """The persisted sessions, kept in memory and saved to ``path`` in coalesced, merged writes.

    All methods but :meth:`load` and :meth:`save_now` are meant for the event loop's thread.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Clock,
        ttl_ms: int = DEFAULT_TTL_MS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        save_delay_s: float = 0.2,
        retry_delay_s: float = 30.0,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.path = path
        self._clock = clock
        self._ttl_ms = ttl_ms
        self._max_entries = max_entries
        self._save_delay_s = save_delay_s
        self._retry_delay_s = retry_delay_s
        self._entries: dict[str, StoredSession] = {}
        self._dirty: dict[str, int] = {}  # key -> generation of its latest change
        self._deleted: set[str] = set()  # tombstones, until the key is put again
        self._gen = 0
        self._saved_gen = 0
        self._timer: TimerHandle | None = None
        self._flush_lock = asyncio.Lock()
        self._disk_lock = threading.Lock()  # one read-merge-write at a time, from any thread
        self._disk_signature: tuple[int, int, int] | None = None
        self._write_seq = 0
        self._adopted_seq = 0
        self._failing = False
        self._tasks: set[asyncio.Task[bool]] = set()
        self._expiry_listeners: list[Callable[[list[StoredSession]], None]] = []

    @classmethod
    def from_defaults(cls, path: Path, defaults: Defaults, *, clock: Clock) -> SessionStore:
        return cls(path, clock=clock, ttl_ms=defaults.session_ttl_ms, max_entries=defaults.max_persisted_sessions)

    def on_expired(self, listener: Callable[[list[StoredSession]], None]) -> None:
        """Call ``listener`` (on the event loop's thread) with entries a save pruned by age or count.

        Entries pruned by :meth:`load` are not reported: nothing of theirs is in memory, and
        whoever loads can compare what it finds on disk with what was loaded.
        """
        self._expiry_listeners.append(listener)

    # -- reading -------------------------------------------------------------------

    def load(self) -> list[StoredSession]:
        """Read the file (a missing file is an empty store); blocking, call it off the loop."""
        try:
            with self._disk_lock:
                loaded = self._read_disk(force=True) or {}
        except OSError as exc:
            # Not overwritten later either: every save reads the file first and fails the same way.
            log.error("cannot read %s: %s; starting with no stored sessions", self.path, exc.strerror or exc)
            loaded = {}
        self._entries = prune(loaded, now_ms=self._now_ms(), ttl_ms=self._ttl_ms, max_entries=self._max_entries)
        self._dirty.clear()
        self._deleted.clear()
        if len(self._entries) != len(loaded):
            log.info("pruned %d expired session(s) from %s", len(loaded) - len(self._entries), self.path)
            self._gen += 1  # the file still holds them: the next save drops them
        return list(self._entries.values())

    def get(self, key: str) -> StoredSession | None:
        return self._entries.get(key)

    def entries(self) -> list[StoredSession]:
        return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @property
    def dirty(self) -> bool:
        """Whether memory holds changes that are not on disk yet."""
        return self._saved_gen < self._gen

    # -- changing ------------------------------------------------------------------

    def put(self, entry: StoredSession) -> None:
        """Add or replace an entry; it reaches the disk with the next (coalesced) save.

        An entry without ``extra`` keeps the unknown fields of the one it replaces.
        """
        if not entry.key:
            raise ValueError("a stored session needs a non-empty key")
        previous = self._entries.get(entry.key)
        if previous is not None and previous.extra and not entry.extra:
            entry = dataclasses.replace(entry, extra=previous.extra)
        self._gen += 1
        self._entries[entry.key] = entry
        self._dirty[entry.key] = self._gen
        self._deleted.discard(entry.key)
        self._schedule(self._save_delay_s)

    def delete(self, key: str) -> bool:
        """Forget ``key`` here and, from the next save on, on disk (even if another writer has it)."""
        existed = self._entries.pop(key, None) is not None
        self._gen += 1
        self._dirty.pop(key, None)
        self._deleted.add(key)
        self._schedule(self._save_delay_s)
        return existed

    # -- saving --------------------------------------------------------------------

    async def flush(self, *, durable: bool = True) -> bool:
        """Write every change made before this call; False if the write failed (logged).

        ``durable=False`` for what only has to survive the gateway being killed, not a power
        cut (the run-started marker): it spares two fsyncs on the path to starting claude.
        """
        target = self._gen
        async with self._flush_lock:
            if self._saved_gen >= target:
                return True
            self._cancel_timer()
            snapshot = self._snapshot()
            try:
                written = await asyncio.to_thread(self._write, snapshot, durable)
            except Exception as exc:
                self._on_failure(exc)
                return False
            self._on_success(snapshot, written)
            return True

    def save_now(self) -> bool:
        """Blocking save for shutdown paths that have no event loop left."""
        if self._saved_gen >= self._gen:
            return True
        self._cancel_timer()
        snapshot = self._snapshot()
        try:
            written = self._write(snapshot)
        except Exception as exc:
            self._on_failure(exc)
            return False
        self._on_success(snapshot, written)
        return True

    async def close(self) -> None:
        """Flush and stop the save timer."""
        await self.flush()
        self._cancel_timer()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _snapshot(self) -> _Snapshot:
        return _Snapshot(
            gen=self._gen,
            entries=dict(self._entries),
            dirty=dict(self._dirty),
            deleted=frozenset(self._deleted),
            now_ms=self._now_ms(),
        )

    def _write(self, snapshot: _Snapshot, durable: bool = True) -> _Written:
        # Runs in a worker thread (or the caller's, for save_now); touches only the snapshot.
        with self._disk_lock:
            disk = self._read_disk(force=False)
            if disk is None:
                merged = dict(snapshot.entries)
            else:
                merged = disk
                for key in snapshot.deleted:
                    merged.pop(key, None)
                for key, entry in snapshot.entries.items():
                    # Keys we changed win; keys only we know survive (the file may have been
                    # lost); otherwise the disk's copy is the newer one (another writer's) --
                    # unless it equals ours, whose rendered JSON is already cached.
                    if key in snapshot.dirty or key not in merged or merged[key] == entry:
                        merged[key] = entry
            merged = prune(merged, now_ms=snapshot.now_ms, ttl_ms=self._ttl_ms, max_entries=self._max_entries)
            stat = atomic_write(self.path, render_document(merged.values()), durable=durable)
            self._disk_signature = _signature(stat)
            self._write_seq += 1
            return _Written(self._write_seq, merged)

    def _read_disk(self, *, force: bool) -> dict[str, StoredSession] | None:
        """The file's entries; None when it is still exactly what we last read or wrote."""
        try:
            with open(self.path, "rb") as handle:
                signature = _signature(os.fstat(handle.fileno()))
                if not force and signature == self._disk_signature:
                    return None
                raw = handle.read()
        except FileNotFoundError:
            self._disk_signature = None
            return {}
        try:
            entries, problems = parse_document(raw.decode("utf-8"))
        except (CorruptSessionsFile, UnicodeDecodeError) as exc:
            aside = self._set_aside(move=True)
            log.warning("%s is unreadable (%s); moved it to %s and starting from memory", self.path, exc, aside)
            self._disk_signature = None
            return {}
        if problems:
            aside = self._set_aside(move=False)
            for problem in problems:
                log.warning("%s: skipped %s", self.path, problem)
            log.warning("%s: kept a copy of the original file as %s", self.path, aside)
        self._disk_signature = signature
        return entries

    def _set_aside(self, *, move: bool) -> Path:
        stamp = self._now_ms()
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        suffix = 1
        while aside.exists():
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{suffix}")
            suffix += 1
        try:
            if move:
                os.replace(self.path, aside)
            else:
                shutil.copy2(self.path, aside)
        except OSError as exc:
            log.error("could not set %s aside as %s: %s", self.path, aside, exc)
        return aside

    def _on_success(self, snapshot: _Snapshot, written: _Written) -> None:
        self._saved_gen = max(self._saved_gen, snapshot.gen)
        expired = [entry for key, entry in snapshot.entries.items() if key not in written.entries]
        if expired:
            log.info("pruned %d expired session(s) from %s", len(expired), self.path)
            for listener in self._expiry_listeners:
                try:
                    listener(expired)
                except Exception:
                    log.exception("a listener for expired sessions failed")
        for key, gen in snapshot.dirty.items():
            if self._dirty.get(key) == gen:
                del self._dirty[key]
        if written.seq > self._adopted_seq:
            # Memory becomes the merged, pruned view, plus whatever changed during the write.
            self._adopted_seq = written.seq
            adopted = dict(written.entries)
            for key in self._dirty:
                if key in self._entries:
                    adopted[key] = self._entries[key]
            for key in self._deleted:
                adopted.pop(key, None)
            self._entries = adopted
        if self._failing:
            self._failing = False
            log.info("sessions saved to %s again", self.path)
        if self._saved_gen < self._gen:
            self._schedule(self._save_delay_s)

    def _on_failure(self, exc: Exception) -> None:
        reason = f"{exc.strerror or exc} ({exc.filename or self.path})" if isinstance(exc, OSError) else repr(exc)
        if not self._failing:
            log.error("could not save sessions to %s: %s; keeping them in memory and retrying", self.path, reason)
        else:
            log.debug("saving sessions to %s still fails: %s", self.path, reason)
        if not isinstance(exc, OSError):
            log.debug("unexpected error while saving sessions", exc_info=exc)
        self._failing = True
        self._schedule(self._retry_delay_s)

    # -- timers --------------------------------------------------------------------

    def _schedule(self, delay: float) -> None:
        if self._timer is not None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (start-up, shutdown): save_now() is the way
        self._timer = self._clock.call_later(delay, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self.flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _now_ms(self) -> int:
        return int(self._clock.now() * 1000)
