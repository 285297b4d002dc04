"""Reading claude's session transcripts: how many turns a terminal took, and which session it ended in.

Claude keeps each session in ``$CLAUDE_CONFIG_DIR`` (else ``~/.claude``) under
``projects/<cwd with / replaced by ->/<session id>.jsonl``, one JSON record per line.
Newer versions replace every character that is not a letter or digit, so both spellings
of the directory are looked for. A turn is a record of ``type`` ``user`` that carries
what a person typed: not a tool result, not a meta record.

Only the standard library and the file system; call these off the event loop.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where claude keeps its sessions for a process started with ``env`` (else ours)."""
    configured = (env or {}).get("CLAUDE_CONFIG_DIR") or os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(configured) if configured else Path.home() / ".claude"


def project_dirs(base: Path, cwd: str) -> list[Path]:
    """The candidate directories of ``cwd``'s sessions, the older spelling first."""
    names = [cwd.replace("/", "-"), re.sub(r"[^A-Za-z0-9]", "-", cwd)]
    return [base / "projects" / name for name in dict.fromkeys(names)]


def transcript_path(base: Path, cwd: str, session_id: str) -> Path | None:
    for directory in project_dirs(base, cwd):
        path = directory / f"{session_id}.jsonl"
        if path.is_file():
            return path
    return None


def _records(path: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return records
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def is_turn(record: Mapping[str, Any]) -> bool:
    """Whether a transcript record is a person's prompt (one turn)."""
    if record.get("type") != "user" or record.get("isMeta"):
        return False
    message = record.get("message")
    content = message.get("content") if isinstance(message, Mapping) else None
    if isinstance(content, str):
        return bool(content.strip())
    if isinstance(content, list):
        kinds = {part.get("type") for part in content if isinstance(part, Mapping)}
        return "tool_result" not in kinds and bool(kinds)
    return False


@dataclass(frozen=True)
class TranscriptMark:
    """Where a session's transcript stood when it was lent out."""

    base: Path
    cwd: str
    session_id: str
    records: int
    """Records it had then (0 when it was not found)."""
    first_uuid: str | None
    """The ``uuid`` of its first record: a session the CLI forked from it starts with the same one."""
    mtime: float


def mark(env: Mapping[str, str] | None, cwd: str, session_id: str) -> TranscriptMark:
    base = config_dir(env)
    path = transcript_path(base, cwd, session_id)
    records = _records(path) if path is not None else []
    first = records[0].get("uuid") if records else None
    mtime = path.stat().st_mtime if path is not None else 0.0
    return TranscriptMark(base, cwd, session_id, len(records), first if isinstance(first, str) else None, mtime)


@dataclass(frozen=True)
class TerminalWork:
    turns: int | None
    """Turns taken since the mark (None: no transcript found)."""
    session_id: str
    """The session the terminal ended in: the marked one, or a new one the CLI carried it on in."""


def since(mark: TranscriptMark, known: frozenset[str] = frozenset()) -> TerminalWork:
    """What happened to the marked session in the terminal.

    A session ID changes when the CLI resumed into a new session: a transcript that
    appeared meanwhile in the same directory, starting with the marked session's records
    (same first ``uuid``), not one of ``known`` (the gateway's other sessions).
    """
    path = transcript_path(mark.base, mark.cwd, mark.session_id)
    records = _records(path) if path is not None else []
    successor = _successor(mark, known) if mark.first_uuid else None
    if successor is not None:
        new_id, new_records = successor
        return TerminalWork(_turns_after(new_records, mark.records), new_id)
    if path is None:
        return TerminalWork(None, mark.session_id)
    return TerminalWork(_turns_after(records, mark.records), mark.session_id)


def _turns_after(records: list[dict[str, Any]], start: int) -> int:
    return sum(1 for record in records[start:] if is_turn(record))


def _successor(mark: TranscriptMark, known: frozenset[str]) -> tuple[str, list[dict[str, Any]]] | None:
    found: list[tuple[float, str, list[dict[str, Any]]]] = []
    for directory in project_dirs(mark.base, mark.cwd):
        if not directory.is_dir():
            continue
        for path in directory.glob("*.jsonl"):
            session_id = path.stem
            if session_id == mark.session_id or session_id in known:
                continue
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if mtime < mark.mtime:
                continue
            records = _records(path)
            if records and records[0].get("uuid") == mark.first_uuid:
                found.append((mtime, session_id, records))
    if not found:
        return None
    _, session_id, records = max(found, key=lambda item: item[0])
    return session_id, records
