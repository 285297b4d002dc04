"""Run claude as a direct child process of the gateway.

Each run gets its own process group (``start_new_session``), and the group does not
outlive the run: on a normal exit, a timeout, a cancel or :meth:`DirectRunner.close`,
whatever claude left behind in it (a background ``npm run dev`` from its Bash tool, say)
is sent SIGTERM and then SIGKILL. Output goes to the shared
:class:`~mpg_tui.runners.parse.OutputParser` in whatever pieces the pipe delivers, so one
huge line (a long reply, a flood of junk) never meets a line-length limit.

A gateway that is SIGKILLed cannot end its runs, so each live run is also written down in
a registry (one small JSON file per run in the private run directory) and carries a random
mark in its environment (:data:`RUN_ID_ENV`). At the next start-up
:meth:`DirectRunner.sweep_orphans` ends the process groups those files name, but only
those it can prove are ours: a member of the group must carry the run's exact mark (read
from ``/proc/<pid>/environ``), and a surviving leader must have the start time recorded
for it. A recycled PID fails both checks and is never signalled.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import json
import logging
import os
import re
import secrets
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mpg_tui.core.clock import Clock, SystemClock
from mpg_tui.core.events import RunnerKind
from mpg_tui.core.runner import Progress, ProgressCallback, Runner, RunRequest, RunResult
from mpg_tui.runners.command import build_argv, child_env
from mpg_tui.runners.parse import OutputParser, missing_cli_result

log = logging.getLogger(__name__)

_STDERR_KEEP = 16 * 1024
StopReason = Literal["timeout", "cancel"]

RUN_ID_ENV = "MPG_TUI_RUN_ID"
"""Set in every direct run's environment to the run's random id, so that a later gateway
can tell the run's processes from unrelated ones that reuse their PIDs. Not a secret."""
REGISTRY_PREFIX = "direct-run-"
"""Registry files are ``<registry_dir>/direct-run-<run id>.json``."""
_GROUP_POLL_S = 0.05
"""How often the sweep looks whether a signalled group is gone (it is not our child: no wait())."""


class _RunProtocol(asyncio.SubprocessProtocol):
    """Feeds claude's output to the parser as it arrives and notices the exit at once.

    ``Process.wait()`` of asyncio (3.11) also waits for every pipe to close, which a
    background child holding stdout can delay for ever; ``process_exited`` does not.
    Parsing inside ``pipe_data_received`` needs no reader tasks and no line limit.
    """

    def __init__(self, parser: OutputParser, on_progress: ProgressCallback, key: str) -> None:
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.pipes_closed: asyncio.Future[None] = loop.create_future()
        self.stderr = bytearray()
        self._parser = parser
        self._on_progress = on_progress
        self._key = key
        self._stdout_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._open = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        if fd == 1:
            self._emit(self._parser.feed(self._stdout_decoder.decode(raw)))
        elif fd == 2:
            self.stderr += raw
            if len(self.stderr) > _STDERR_KEEP:
                del self.stderr[: len(self.stderr) - _STDERR_KEEP]

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd not in self._open:
            return  # stdin: claude stopped reading, its exit status tells the story
        self._open.discard(fd)
        if fd == 1:
            self._emit(self._parser.feed(self._stdout_decoder.decode(b"", final=True)))
        if not self._open and not self.pipes_closed.done():
            self.pipes_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def _emit(self, progress: list[Progress]) -> None:
        for item in progress:
            try:
                self._on_progress(item)
            except Exception:
                log.exception("run %s: progress callback failed on %s", self._key, item.step)


@dataclass(eq=False)
class _LiveRun:
    key: str
    transport: asyncio.SubprocessTransport
    protocol: _RunProtocol
    stop_reason: StopReason | None = None
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    ending: asyncio.Future[None] | None = None
    registered: Path | None = None
    """The run's registry file, while it exists."""

    def stop(self, reason: StopReason) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.stopped.set()


class DirectRunner(Runner):
    """The :class:`~mpg_tui.core.runner.Runner` that spawns ``claude --print`` itself."""

    kind: RunnerKind = "direct"
    runs_outlive_gateway = False

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        stream: bool = True,
        kill_grace_s: float = 2.0,
        registry_dir: Path | None = None,
    ) -> None:
        """``clock`` times the run and its timeout; ``kill_grace_s`` is how long a stopped
        claude gets between SIGTERM and SIGKILL (real time: it is about a real process).
        ``stream=False`` asks for ``--output-format json`` and so gives no progress.
        ``registry_dir`` (private, one per gateway instance) is where live runs are written
        down for :meth:`sweep_orphans`; without it runs are not registered."""
        self._clock = clock or SystemClock()
        self._stream = stream
        self._kill_grace_s = kill_grace_s
        self._registry = registry_dir
        self._live: set[_LiveRun] = set()

    @property
    def running(self) -> list[str]:
        """Keys of the runs in progress."""
        return sorted(run.key for run in self._live)

    async def run(self, request: RunRequest, on_progress: ProgressCallback) -> RunResult:
        argv = build_argv(request, stream=self._stream)
        if not request.cwd.is_dir():
            error = f"The project directory {request.cwd} does not exist (or is not a directory)."
            return RunResult(ok=False, error=error, error_kind="crash")
        started = self._clock.monotonic()
        parser = OutputParser(cwd=request.cwd)
        loop = asyncio.get_running_loop()
        run_id = secrets.token_hex(16)
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _RunProtocol(parser, on_progress, request.key),
                *argv,
                cwd=request.cwd,
                # Applied last, so that no configured environment can take the mark away.
                env=child_env({**(request.env or {}), RUN_ID_ENV: run_id}),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except (FileNotFoundError, PermissionError):
            return missing_cli_result(argv[0])
        except OSError as exc:
            return RunResult(ok=False, error=f"Could not start `{argv[0]}`: {exc.strerror or exc}.", error_kind="crash")
        live = _LiveRun(request.key, transport, protocol)
        # Written before anything else can run on the loop: only a SIGKILL landing in the
        # moment between the spawn and this write leaves a run the next sweep cannot see.
        live.registered = self._register(request.key, transport.get_pid(), run_id)
        self._live.add(live)
        timer = self._clock.call_later(request.timeout_s, lambda: live.stop("timeout"))
        log.debug("run %s started: pid %s in %s", request.key, transport.get_pid(), request.cwd)
        try:
            await self._supervise(live, request.prompt)
        finally:
            timer.cancel()
            self._live.discard(live)
            # Also reached when our caller is cancelled: nothing of the run may survive, even
            # if it is cancelled again while the group is being ended (hence the shield).
            try:
                await asyncio.shield(self._end_group(live))
            finally:
                transport.close()
                live.finished.set()
        result = parser.finish(
            transport.get_returncode(),
            protocol.stderr.decode("utf-8", errors="replace"),
            timed_out=live.stop_reason == "timeout",
            cancelled=live.stop_reason == "cancel",
            timeout_s=request.timeout_s,
        )
        if not result.duration_ms:
            elapsed_ms = int((self._clock.monotonic() - started) * 1000)
            result = dataclasses.replace(result, duration_ms=max(0, elapsed_ms))
        log.debug("run %s ended: ok=%s kind=%s", request.key, result.ok, result.error_kind)
        return result

    async def cancel(self, key: str) -> bool:
        """Stop the run for ``key``; returns once its process group is gone."""
        matches = [run for run in self._live if run.key == key]
        for run in matches:
            run.stop("cancel")
        for run in matches:
            await run.finished.wait()
        return bool(matches)

    async def close(self) -> None:
        """Stop every run in progress (they end as ``cancelled``)."""
        runs = list(self._live)
        for run in runs:
            run.stop("cancel")
        for run in runs:
            await run.finished.wait()

    def tmux_session(self, key: str) -> None:
        return None

    def attach_command(self, key: str) -> None:
        return None

    async def acknowledge(self, key: str) -> None:
        """Nothing to drop: a direct run's result lives only in memory."""

    async def release(self, key: str) -> None:
        """Nothing to drop: no process outlives its turn."""

    async def _supervise(self, live: _LiveRun, prompt: str) -> None:
        stdin = live.transport.get_pipe_transport(0)
        if isinstance(stdin, asyncio.WriteTransport):
            stdin.write(prompt.encode("utf-8"))
            stdin.close()  # flushes what is buffered, then closes: claude sees the end of its input
        stopped = asyncio.ensure_future(live.stopped.wait())
        either: set[asyncio.Future[Any]] = {live.protocol.exited, stopped}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        await asyncio.shield(self._end_group(live))
        # Every holder of the pipes is gone now, so they close and the output is complete;
        # the bound is for a grandchild that left the group (setsid) and still holds one.
        try:
            await asyncio.wait_for(asyncio.shield(live.protocol.pipes_closed), self._kill_grace_s)
        except TimeoutError:
            log.warning("run %s: output pipes still open after claude ended; not waiting", live.key)

    def _end_group(self, live: _LiveRun) -> asyncio.Future[None]:
        """SIGTERM the run's process group, SIGKILL it after the grace period; unregister it.

        One task per run, however often it is asked for: a caller cancelled while waiting
        for it must not cut the ending short (the SIGKILL, the registry file).
        """
        if live.ending is None:
            live.ending = asyncio.ensure_future(self._signal_group_until_ended(live))
        return live.ending

    async def _signal_group_until_ended(self, live: _LiveRun) -> None:
        pgid = live.transport.get_pid()
        exited = live.protocol.exited
        # The child leads the group, so the group id is its pid. While any member lives the
        # id cannot be reused; once none does, the signal simply finds no one.
        _signal_group(pgid, signal.SIGTERM)
        if not exited.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), self._kill_grace_s)
        _signal_group(pgid, signal.SIGKILL)
        await exited
        if live.registered is not None:
            _remove_file(live.registered)
            live.registered = None

    # -- the registry of live runs and the start-up sweep -----------------------------------

    def _register(self, key: str, pid: int, run_id: str) -> Path | None:
        """Write the run down; a registry that cannot be written costs a warning, not the run."""
        if self._registry is None:
            return None
        record = RunRecord(
            key=key, pid=pid, pgid=pid, started_at=self._clock.now(), run_id=run_id, start_ticks=_start_ticks(pid)
        )
        path = self._registry / f"{REGISTRY_PREFIX}{run_id}.json"
        try:
            self._registry.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_atomically(path, record.to_json())
        except OSError as exc:
            log.warning("run %s: could not record it in %s (%s); a crash would leave it running", key, path, exc)
            return None
        return path

    async def sweep_orphans(self) -> list[str]:
        """End the runs a previous gateway left behind in the registry; returns their keys.

        Meant for start-up, before any message is handled. Each leftover file is removed;
        its process group is signalled (SIGTERM, SIGKILL after the kill grace) only when
        it is verifiably the recorded run's.
        """
        if self._registry is None:
            return []
        mine = {run.registered for run in self._live}
        found = await asyncio.to_thread(_leftovers, self._registry)
        orphans: list[tuple[Path, RunRecord]] = []
        for path, record in found:
            if path in mine:
                continue  # a run of this gateway, not a leftover
            if record is None:
                _remove_file(path)
            else:
                orphans.append((path, record))
        ended = await asyncio.gather(*(self._end_orphan(path, record) for path, record in orphans))
        return [record.key for (_, record), was_ended in zip(orphans, ended, strict=True) if was_ended]

    async def _end_orphan(self, path: Path, record: RunRecord) -> bool:
        ended = await self._end_orphan_group(record)
        # Only now: a gateway stopped in the middle of the sweep leaves the file to the next.
        _remove_file(path)
        return ended

    async def _end_orphan_group(self, record: RunRecord) -> bool:
        verdict = await asyncio.to_thread(_verify_group, record)
        if verdict != "ours":
            how = log.info if verdict == "foreign" else log.debug
            how("run %s of the previous gateway: %s; nothing signalled", record.key, _VERDICTS[verdict])
            return False
        _signal_group(record.pgid, signal.SIGTERM)
        lingers = not await _group_gone(record.pgid, self._kill_grace_s)
        # Checked again: a group that ended meanwhile may have handed its id to another.
        if lingers and await asyncio.to_thread(_verify_group, record) == "ours":
            _signal_group(record.pgid, signal.SIGKILL)
            if not await _group_gone(record.pgid, self._kill_grace_s):
                log.warning("run %s: its process group %d survived SIGKILL", record.key, record.pgid)
        log.warning("ended claude left running by the previous gateway for %s", record.key)
        return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass(frozen=True)
class RunRecord:
    """One registry file: a direct run that was live when it was written."""

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
        return json.dumps(dataclasses.asdict(self)).encode("utf-8")

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
_PROC = Path("/proc")


def _leftovers(directory: Path) -> list[tuple[Path, RunRecord | None]]:
    """Every registry file in ``directory``, with its record (None if unreadable).

    Blocking. Temporary files of an interrupted write are removed here.
    """
    try:
        entries = sorted(directory.iterdir())
    except FileNotFoundError:
        return []
    found: list[tuple[Path, RunRecord | None]] = []
    for path in entries:
        if path.name.startswith(f".{REGISTRY_PREFIX}") and path.name.endswith(".tmp"):
            _remove_file(path)
            continue
        if not (path.name.startswith(REGISTRY_PREFIX) and path.name.endswith(".json")):
            continue  # not ours: the run directory is shared with the tmux runner
        record: RunRecord | None = None
        try:
            if path.is_symlink() or not path.is_file():
                raise ValueError("not a regular file")
            record = RunRecord.from_json(path.read_bytes())
            if path.name != f"{REGISTRY_PREFIX}{record.run_id}.json":
                raise ValueError("its run id does not match its name")
        except (OSError, ValueError) as exc:
            log.warning("removing unusable direct-run record %s: %s", path, exc)
            record = None
        found.append((path, record))
    return found


def _verify_group(record: RunRecord) -> Verdict:
    """Whether the recorded process group is still the recorded run's. Blocking.

    A live member must carry the run's id in its environment. Children inherit it, so
    this holds for a group whose leader (claude) is gone but whose children work on; a
    leader that is present must also have started when the recorded one did.
    """
    if not (_PROC / "self" / "stat").exists():
        return "unverifiable"
    members = _group_members(record.pgid)
    if not members:
        return "gone"
    if record.pgid in members and record.start_ticks is not None and _start_ticks(record.pgid) != record.start_ticks:
        return "foreign"
    mark = f"{RUN_ID_ENV}={record.run_id}".encode()
    return "ours" if any(_carries(pid, mark) for pid in members) else "foreign"


def _group_members(pgid: int) -> set[int]:
    """Live (not zombie) processes in group ``pgid``. Blocking."""
    members: set[int] = set()
    try:
        names = [entry.name for entry in os.scandir(_PROC) if entry.name.isdigit()]
    except OSError:
        return members
    for name in names:
        fields = _stat_fields(int(name))
        if fields is not None and fields[0] not in ("Z", "X") and fields[2] == str(pgid):
            members.add(int(name))
    return members


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from field 3 (state) on; None when it cannot be read."""
    try:
        text = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces and ")".
    return text.rpartition(")")[2].split()


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields is not None else None  # field 22, counted from 3
    except (IndexError, ValueError):
        return None


def _carries(pid: int, mark: bytes) -> bool:
    """Whether ``mark`` (``NAME=value``) is one of the entries of the process's environment."""
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or another user's (unreadable): not ours either way
        return False
    return mark in environ.split(b"\0")


async def _group_gone(pgid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for group ``pgid`` to have no live member."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await asyncio.to_thread(_group_members, pgid):
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(_GROUP_POLL_S)
    return True


def _write_atomically(path: Path, data: bytes) -> None:
    """Create or replace ``path`` (mode 0600, never through a symlink) in one step.

    No fsync: the file guards against the gateway dying, not the machine, and a machine
    that dies takes the runs with it.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    _remove_file(temporary)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(temporary, flags, 0o600), "wb") as file:
        file.write(data)
    os.replace(temporary, path)


def _remove_file(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)
