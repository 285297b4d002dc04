"""The orphan-run registry: live runs written down, so that the next gateway can end them.

A gateway that is SIGKILLed cannot end its runs, so each live run is written down in a
registry (one small JSON file per run in the private run directory) and carries a random
mark in its environment (:data:`RUN_ID_ENV`). At the next start-up
:meth:`RunRegistry.sweep` ends the process groups those files name, but only those it can
prove are ours: a member of the group must carry the run's exact mark (read from
``/proc/<pid>/environ``), and a surviving leader must have the start time recorded for
it. A recycled PID fails both checks and is never signalled.

The direct runner uses it; any runner whose runs are process groups it leads can.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import signal
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mpg_tui.core.clock import Clock
from mpg_tui.core.plain import plain
from mpg_tui.fsutil import atomic_write
from mpg_tui.runners.process import environ_has, group_members, has_procfs, signal_group, start_ticks

log = logging.getLogger(__name__)

RUN_ID_ENV = "MPG_TUI_RUN_ID"
"""Set in every registered run's environment to the run's random id, so that a later
gateway can tell the run's processes from unrelated ones that reuse their PIDs. Not a secret."""
_GROUP_POLL_S = 0.05
"""How often the sweep looks whether a signalled group is gone (it is not our child: no wait())."""


def new_run_id() -> str:
    """A fresh value for :data:`RUN_ID_ENV` (what :meth:`RunRecord.from_json` accepts)."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class RunRecord:
    """One registry file: a run that was live when it was written."""

    key: str
    pid: int
    pgid: int
    started_at: float
    """Wall-clock seconds since the epoch (for people reading the file)."""
    run_id: str
    """The value of :data:`RUN_ID_ENV` in the run's environment."""
    start_ticks: int | None
    """The leader's start time (``/proc/<pid>/stat`` field 22); None where unknown."""

    def to_json(self) -> bytes:
        return json.dumps(plain(self)).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> RunRecord:
        """The record in ``data``; :class:`ValueError` saying what is wrong otherwise."""
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        key, run_id, started_at = raw.get("key"), raw.get("run_id"), raw.get("started_at")
        if not isinstance(key, str) or not key:
            raise ValueError("no session key")
        if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
            raise ValueError("no run id")
        if not isinstance(started_at, int | float) or isinstance(started_at, bool):
            raise ValueError("no start time")
        start_ticks = raw.get("start_ticks")
        if start_ticks is not None:
            start_ticks = _whole_number(raw, "start_ticks", minimum=0)
        return cls(
            key=key,
            # 0 and 1 would make killpg() mean "our own group" or init's: never acceptable.
            pid=_whole_number(raw, "pid", minimum=2),
            pgid=_whole_number(raw, "pgid", minimum=2),
            started_at=float(started_at),
            run_id=run_id,
            start_ticks=start_ticks,
        )


def _whole_number(raw: dict[str, Any], name: str, *, minimum: int) -> int:
    value = raw.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} is not a whole number of at least {minimum}: {value!r}")
    return value


_RUN_ID = re.compile(r"[0-9a-f]{32}")
Verdict = Literal["ours", "gone", "foreign", "unverifiable"]
_VERDICTS: dict[Verdict, str] = {
    "ours": "still running",
    "gone": "already ended",
    "foreign": "its process ids now belong to other processes",
    "unverifiable": "cannot be verified here (no /proc)",
}


class RunRegistry:
    """The registry files ``<directory>/<prefix><run id>.json``; other files there are left alone."""

    def __init__(self, directory: Path, prefix: str, clock: Clock) -> None:
        """``directory`` is private, one per gateway instance, and may be shared with
        other runners' files; ``prefix`` tells this registry's files apart."""
        self._directory = directory
        self._prefix = prefix
        self._clock = clock

    def register(self, key: str, pid: int, run_id: str) -> Path | None:
        """Write down the run led by ``pid``; returns its file for :meth:`unregister`.

        Blocking, but short: meant to run before anything else can on the loop. A
        registry that cannot be written costs a warning (and None), not the run.
        """
        record = RunRecord(
            key=key, pid=pid, pgid=pid, started_at=self._clock.now(), run_id=run_id, start_ticks=start_ticks(pid)
        )
        path = self._directory / f"{self._prefix}{run_id}.json"
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            # No fsync: the file guards against the gateway dying, not the machine, and a
            # machine that dies takes the runs with it.
            atomic_write(path, record.to_json(), durable=False)
        except OSError as exc:
            log.warning("run %s: could not record it in %s (%s); a crash would leave it running", key, path, exc)
            return None
        return path

    def unregister(self, path: Path) -> None:
        _remove_file(path)

    async def sweep(self, live: Collection[Path], kill_grace_s: float) -> list[str]:
        """End the runs a previous gateway left behind; returns their keys.

        ``live`` are the files of this gateway's own runs, which are left alone. Each
        other file is removed; its process group is signalled (SIGTERM, SIGKILL after
        ``kill_grace_s``) only when it is verifiably the recorded run's.
        """
        found = await asyncio.to_thread(self._leftovers)
        orphans: list[tuple[Path, RunRecord]] = []
        for path, record in found:
            if path in live:
                continue  # a run of this gateway, not a leftover
            if record is None:
                _remove_file(path)
            else:
                orphans.append((path, record))
        ended = await asyncio.gather(*(self._end_orphan(path, record, kill_grace_s) for path, record in orphans))
        return [record.key for (_, record), was_ended in zip(orphans, ended, strict=True) if was_ended]

    async def _end_orphan(self, path: Path, record: RunRecord, kill_grace_s: float) -> bool:
        ended = await _end_orphan_group(record, kill_grace_s)
        # Only now: a gateway stopped in the middle of the sweep leaves the file to the next.
        _remove_file(path)
        return ended

    def _leftovers(self) -> list[tuple[Path, RunRecord | None]]:
        """Every registry file, with its record (None if unreadable).

        Blocking. Temporary files of an interrupted write are removed here.
        """
        try:
            entries = sorted(self._directory.iterdir())
        except FileNotFoundError:
            return []
        found: list[tuple[Path, RunRecord | None]] = []
        for path in entries:
            if path.name.startswith(f".{self._prefix}") and path.name.endswith(".tmp"):
                _remove_file(path)
                continue
            if not (path.name.startswith(self._prefix) and path.name.endswith(".json")):
                continue  # not ours: the run directory is shared with the tmux runner
            record: RunRecord | None = None
            try:
                if path.is_symlink() or not path.is_file():
                    raise ValueError("not a regular file")
                record = RunRecord.from_json(path.read_bytes())
                if path.name != f"{self._prefix}{record.run_id}.json":
                    raise ValueError("its run id does not match its name")
            except (OSError, ValueError) as exc:
                log.warning("removing unusable run record %s: %s", path, exc)
                record = None
            found.append((path, record))
        return found


async def _end_orphan_group(record: RunRecord, kill_grace_s: float) -> bool:
    verdict = await asyncio.to_thread(_verify_group, record)
    if verdict != "ours":
        how = log.info if verdict == "foreign" else log.debug
        how("run %s of the previous gateway: %s; nothing signalled", record.key, _VERDICTS[verdict])
        return False
    signal_group(record.pgid, signal.SIGTERM)
    lingers = not await _group_gone(record.pgid, kill_grace_s)
    # Checked again: a group that ended meanwhile may have handed its id to another.
    if lingers and await asyncio.to_thread(_verify_group, record) == "ours":
        signal_group(record.pgid, signal.SIGKILL)
        if not await _group_gone(record.pgid, kill_grace_s):
            log.warning("run %s: its process group %d survived SIGKILL", record.key, record.pgid)
    log.warning("ended claude left running by the previous gateway for %s", record.key)
    return True


def _verify_group(record: RunRecord) -> Verdict:
    """Whether the recorded process group is still the recorded run's. Blocking.

    A live member must carry the run's id in its environment. Children inherit it, so
    this holds for a group whose leader (claude) is gone but whose children work on; a
    leader that is present must also have started when the recorded one did.
    """
    if not has_procfs():
        return "unverifiable"
    members = group_members(record.pgid)
    if not members:
        return "gone"
    if record.pgid in members and record.start_ticks is not None and start_ticks(record.pgid) != record.start_ticks:
        return "foreign"
    mark = f"{RUN_ID_ENV}={record.run_id}".encode()
    return "ours" if any(environ_has(pid, mark) for pid in members) else "foreign"


async def _group_gone(pgid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for group ``pgid`` to have no live member."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await asyncio.to_thread(group_members, pgid):
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(_GROUP_POLL_S)
    return True


def _remove_file(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)
