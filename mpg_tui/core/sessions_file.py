"""The ``sessions.json`` format: MPG's entries, plus fields of ours, read and written.

The file stays readable by and for MPG. Each entry carries MPG's fields with MPG's
meaning (``sessionId``, ``projectKey`` -- which in MPG is the *session key*, the thread
or ``thread:agent`` -- ``cwd``, ``lastActivity`` in epoch milliseconds, and the optional
``worktreePath``/``projectDir``), plus fields of ours (``channelId``, ``threadId``,
``agent``, ``threadName``, usage totals, ``runs`` and a ``pendingRun`` marker for a run in
progress). Fields we do not know are kept as they are. This is the one reader of the file:
the gateway's store and ``mpg-tui status`` both use :func:`parse_document`.

The file is written in the form MPG's own store writes and reads: a JSON array of
entries, which MPG keys by ``projectKey``, skipping entries without ``sessionId`` or
``projectKey`` and ignoring fields it does not know. So MPG started on a file we wrote
takes up the same sessions (a restarted session, written with ``sessionId: null``,
starts fresh there too). The object form (``{"<key>": {...}}``) earlier versions of
ours wrote is still read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

SESSIONS_FILE_NAME = "sessions.json"

# JSON names of the fields this module understands; anything else lands in ``extra``.
_KNOWN_FIELDS = frozenset(
    {
        "sessionId",
        "projectKey",
        "cwd",
        "lastActivity",
        "worktreePath",
        "projectDir",
        "channelId",
        "threadId",
        "agent",
        "threadName",
        "costUsd",
        "inputTokens",
        "outputTokens",
        "runs",
        "pendingRun",
    }
)


class CorruptSessionsFile(ValueError):
    """The whole file cannot be read as sessions (bad JSON, wrong shape, bad encoding)."""


@dataclass(frozen=True)
class PendingRun:
    """Marks a run in progress, so a gateway that died mid-run can say the run was lost."""

    started_at_ms: int
    runner: str
    prompt_preview: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"startedAt": self.started_at_ms, "runner": self.runner, "prompt": self.prompt_preview}

    @classmethod
    def from_json(cls, data: Any) -> PendingRun:
        if not isinstance(data, dict):
            raise ValueError("'pendingRun' must be an object")
        return cls(
            started_at_ms=_int_field(data, "startedAt", required=True),
            runner=_str_field(data, "runner") or "direct",
            prompt_preview=_str_field(data, "prompt") or "",
        )


@dataclass(frozen=True)
class StoredSession:
    """One entry of ``sessions.json``. Immutable: replace it with :func:`dataclasses.replace`."""

    key: str
    """``<threadId>`` or ``<threadId>:<agent>`` (MPG writes it as ``projectKey``)."""
    session_id: str | None
    cwd: str
    last_activity_ms: int
    channel_id: str | None = None
    """The project's channel (what :class:`~mpg_tui.core.api.SessionInfo` calls ``project_key``)."""
    thread_id: str | None = None
    agent: str | None = None
    thread_name: str | None = None
    """The thread's name as the gateway opened it, so faces show it after a restart."""
    worktree_path: str | None = None
    project_dir: str | None = None
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    runs: int = 0
    pending_run: PendingRun | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Fields written by someone else (a newer MPG, another tool); written back unchanged."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        data.update(
            sessionId=self.session_id,
            projectKey=self.key,
            cwd=self.cwd,
            lastActivity=self.last_activity_ms,
        )
        optional: dict[str, Any] = {
            "worktreePath": self.worktree_path,
            "projectDir": self.project_dir,
            "channelId": self.channel_id,
            "threadId": self.thread_id,
            "agent": self.agent,
            "threadName": self.thread_name,
        }
        data.update({name: value for name, value in optional.items() if value is not None})
        if self.runs or self.cost_usd or self.input_tokens or self.output_tokens:
            data.update(
                costUsd=self.cost_usd,
                inputTokens=self.input_tokens,
                outputTokens=self.output_tokens,
                runs=self.runs,
            )
        if self.pending_run is not None:
            data["pendingRun"] = self.pending_run.to_json()
        return data

    @cached_property
    def json_text(self) -> str:
        """The entry as one line of JSON; computed once, since entries are immutable."""
        return json.dumps(self.to_json())

    @classmethod
    def from_json(cls, key: str, data: Any) -> StoredSession:
        """Validate one entry; raises ValueError saying what is wrong with it."""
        if not isinstance(data, dict):
            raise ValueError("expected an object")
        session_id = data.get("sessionId")
        if session_id is not None and not isinstance(session_id, str):
            raise ValueError("'sessionId' must be a string")
        cwd = data.get("cwd")
        if not isinstance(cwd, str) or not cwd:
            raise ValueError("'cwd' must be a non-empty string")
        pending = data.get("pendingRun")
        return cls(
            key=key,
            session_id=session_id or None,
            cwd=cwd,
            last_activity_ms=_int_field(data, "lastActivity", required=True),
            channel_id=_str_field(data, "channelId"),
            thread_id=_str_field(data, "threadId"),
            agent=_str_field(data, "agent"),
            thread_name=_str_field(data, "threadName"),
            worktree_path=_str_field(data, "worktreePath"),
            project_dir=_str_field(data, "projectDir"),
            cost_usd=_float_field(data, "costUsd"),
            input_tokens=_int_field(data, "inputTokens"),
            output_tokens=_int_field(data, "outputTokens"),
            runs=_int_field(data, "runs"),
            pending_run=PendingRun.from_json(pending) if pending is not None else None,
            extra={} if data.keys() <= _KNOWN_FIELDS else {k: v for k, v in data.items() if k not in _KNOWN_FIELDS},
        )


def _str_field(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"'{name}' must be a string")


def _int_field(data: Mapping[str, Any], name: str, *, required: bool = False) -> int:
    value = data.get(name)
    if value is None and not required:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"'{name}' must be a number")
    return int(value)


def _float_field(data: Mapping[str, Any], name: str) -> float:
    value = data.get(name, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"'{name}' must be a number")
    return float(value)


def parse_document(text: str) -> tuple[dict[str, StoredSession], list[str]]:
    """Entries of a ``sessions.json`` text, and one problem line per entry that was skipped.

    Reads the array form MPG's own code writes (``[{"projectKey": "<key>", ...}]``, later
    entries winning as in MPG) and the object form (``{"<key>": {...}}``). Raises
    :class:`CorruptSessionsFile` when the text is not usable at all.
    """
    if not text.strip():
        raise CorruptSessionsFile("the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptSessionsFile(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    pairs: list[tuple[object, object]]
    if isinstance(data, dict):
        pairs = list(data.items())
    elif isinstance(data, list):
        pairs = [(item.get("projectKey") if isinstance(item, dict) else None, item) for item in data]
    else:
        raise CorruptSessionsFile(f"expected a JSON object of sessions, got {type(data).__name__}")
    entries: dict[str, StoredSession] = {}
    problems: list[str] = []
    for index, (key, raw) in enumerate(pairs):
        if not isinstance(key, str) or not key:
            problems.append(f"entry #{index + 1}: no session key")
            continue
        try:
            entries[key] = StoredSession.from_json(key, raw)
        except ValueError as exc:
            problems.append(f"entry {key!r}: {exc}")
    return entries, problems


def render_document(entries: Iterable[StoredSession]) -> str:
    """The file's text in MPG's array form: one entry a line, so it stays readable and diffs well.

    ``json.dumps(indent=...)`` would fall back to the pure-Python encoder, which is an
    order of magnitude slower on ten thousand entries.
    """
    lines = [f"  {entry.json_text}" for entry in entries]
    if not lines:
        return "[]\n"
    return "[\n" + ",\n".join(lines) + "\n]\n"


def prune(
    entries: Mapping[str, StoredSession], *, now_ms: int, ttl_ms: int, max_entries: int
) -> dict[str, StoredSession]:
    """Drop entries idle longer than ``ttl_ms`` (0 = no TTL), then all but the newest ``max_entries``."""
    kept = {key: entry for key, entry in entries.items() if ttl_ms <= 0 or now_ms - entry.last_activity_ms <= ttl_ms}
    if len(kept) > max_entries:
        newest = sorted(kept.values(), key=lambda e: e.last_activity_ms, reverse=True)[:max_entries]
        keep_keys = {entry.key for entry in newest}
        kept = {key: entry for key, entry in kept.items() if key in keep_keys}
    return kept
