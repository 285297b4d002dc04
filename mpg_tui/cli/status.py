"""``mpg-tui status``: the persisted sessions of a profile, and whether its gateway runs.

Reads ``sessions.json`` directly (MPG's schema: ``{"<key>": {sessionId, projectKey, cwd,
lastActivity, worktreePath?, projectDir?}}``; MPG before 0.6 wrote a list of the same
entries). It never reads the ``.env`` files, so it cannot show a secret.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from mpg_tui.cli.common import EXIT_FAILURE, EXIT_OK, Io, format_age, make_console, plain
from mpg_tui.config import GatewayConfig, load_config
from mpg_tui.locations import resolve_locations
from mpg_tui.pidfile import running_pid

# lastActivity is epoch milliseconds (JavaScript's Date.now()); anything below this is
# taken to be seconds, from a writer that used Python's time.time().
_MS_THRESHOLD = 100_000_000_000


class SessionsFileError(Exception):
    """``sessions.json`` exists but is not readable JSON of the expected shape."""


@dataclass(frozen=True)
class PersistedSession:
    key: str
    session_id: str | None
    project_key: str
    cwd: str
    last_activity: float
    """Seconds since the epoch."""
    worktree_path: str | None = None

    @property
    def thread_id(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def agent(self) -> str | None:
        _, _, agent = self.key.partition(":")
        return agent or None


def _entry(key: str, raw: Any) -> PersistedSession | None:
    if not isinstance(raw, dict):
        return None
    # Our gateway writes the project's channel as channelId; MPG's projectKey is the session key.
    project_key = raw.get("channelId") or raw.get("projectKey")
    session_id, last = raw.get("sessionId"), raw.get("lastActivity")
    # A null sessionId is a session whose first run has not finished, or was restarted.
    if not (session_id is None or isinstance(session_id, str)) or not isinstance(project_key, str):
        return None
    if not isinstance(last, int | float) or isinstance(last, bool):
        return None
    worktree = raw.get("worktreePath")
    cwd = raw.get("cwd")
    return PersistedSession(
        key=key,
        session_id=session_id,
        project_key=project_key,
        cwd=cwd if isinstance(cwd, str) else "",
        last_activity=last / 1000 if last >= _MS_THRESHOLD else float(last),
        worktree_path=worktree if isinstance(worktree, str) else None,
    )


def read_sessions(path: Path) -> tuple[list[PersistedSession], int]:
    """(sessions, number of malformed entries skipped); a missing file is no sessions."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [], 0
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SessionsFileError(f"{path}: cannot read sessions: {exc}") from None
    if isinstance(data, dict):
        pairs = list(data.items())
    elif isinstance(data, list):  # MPG before 0.6: a list keyed by projectKey
        pairs = [(str(item.get("projectKey", "?")) if isinstance(item, dict) else "?", item) for item in data]
    else:
        raise SessionsFileError(f"{path}: expected a JSON object of sessions")
    sessions = [s for key, raw in pairs if (s := _entry(key, raw)) is not None]
    return sessions, len(pairs) - len(sessions)


def _project_name(config: GatewayConfig, key: str) -> str:
    view = config.project(key)
    return view.name if view else f"{key} (not in config)"


def run(args: argparse.Namespace, io: Io) -> int:
    locations = resolve_locations(args.config, args.profile, io.cwd, io.env)
    config_path = locations.require_config()
    config = load_config(config_path)
    console = make_console(io.stdout, io.env)
    err = make_console(io.stderr, io.env)

    pid = running_pid(locations.pid_file)
    state = f"running (PID {pid})" if pid else "not running"
    console.print(plain(f"Profile:  {locations.profile}"))
    console.print(plain(f"Config:   {config_path}"))
    console.print(plain(f"Gateway:  {state}", "green" if pid else "yellow"))
    sessions_path = locations.sessions_path or config_path.parent / "sessions.json"
    try:
        sessions, malformed = read_sessions(sessions_path)
    except SessionsFileError as exc:
        err.print(plain(f"mpg-tui: {exc}", "red"))
        return EXIT_FAILURE
    if not sessions_path.exists():
        console.print(plain(f"No sessions file yet ({sessions_path})."))
        return EXIT_OK
    console.print(plain(f"Sessions: {sessions_path}"))
    if malformed:
        console.print(plain(f"{malformed} malformed session entr{'y' if malformed == 1 else 'ies'} skipped", "yellow"))
    if not sessions:
        console.print(plain("No persisted sessions."))
        return EXIT_OK

    now = io.now()
    table = Table(title=f"{len(sessions)} session{'s' * (len(sessions) != 1)}", title_justify="left")
    for column in ("Project", "Thread", "Agent", "Session ID", "Idle", "Directory"):
        table.add_column(column, no_wrap=column in {"Thread", "Session ID", "Idle"})
    for session in sorted(sessions, key=lambda s: s.last_activity, reverse=True):
        table.add_row(
            plain(_project_name(config, session.project_key)),
            plain(session.thread_id),
            plain(session.agent or "-"),
            plain(session.session_id or "— (no run finished yet)"),
            plain(format_age(now - session.last_activity)),
            plain(session.worktree_path or session.cwd),
        )
    console.print(table)
    return EXIT_OK
