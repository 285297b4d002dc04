"""``mpg-tui status``: the persisted sessions of a profile, and whether its gateway runs.

Reads ``sessions.json`` with the gateway's own reader (:mod:`mpg_tui.core.sessions_file`:
MPG's array form or the object form), so it lists exactly what a gateway would load. It never
reads the ``.env`` files, so it cannot show a secret.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from mpg_tui.cli.common import EXIT_FAILURE, EXIT_OK, Io, format_age, make_console, plain
from mpg_tui.config import GatewayConfig, load_config
from mpg_tui.core.sessions_file import CorruptSessionsFile, StoredSession, parse_document
from mpg_tui.locations import resolve_locations
from mpg_tui.pidfile import live_pid_in, running_pid

THREAD_NAME_SHOWN = 40


class SessionsFileError(Exception):
    """``sessions.json`` exists but is not readable as sessions."""


def read_sessions(path: Path) -> tuple[list[StoredSession], int]:
    """(sessions, number of malformed entries skipped); a missing file is no sessions."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], 0
    except (OSError, UnicodeDecodeError) as exc:
        raise SessionsFileError(f"{path}: cannot read sessions: {exc}") from None
    try:
        entries, problems = parse_document(text)
    except CorruptSessionsFile as exc:
        raise SessionsFileError(f"{path}: cannot read sessions: {exc}") from None
    return list(entries.values()), len(problems)


def _project_name(config: GatewayConfig, session: StoredSession) -> str:
    """Our entries name their project's channel; MPG's only say where claude ran."""
    view = config.project(session.channel_id) if session.channel_id else None
    if view is None:
        view = next((v for v in config.views() if session.cwd.startswith(v.directory)), None)
    if view is not None:
        return view.name
    return f"{session.channel_id} (not in config)" if session.channel_id else "?"


def _thread_label(session: StoredSession) -> str:
    thread_id = session.thread_id or session.key.split(":", 1)[0]
    name = session.thread_name
    if not name:
        return thread_id
    if len(name) > THREAD_NAME_SHOWN:
        name = name[: THREAD_NAME_SHOWN - 1] + "…"
    return f"{name} ({thread_id})"


def run(args: argparse.Namespace, io: Io) -> int:
    locations = resolve_locations(args.config, args.profile, io.cwd, io.env)
    config_path = locations.require_config()
    config = load_config(config_path)
    console = make_console(io.stdout, io.env)
    err = make_console(io.stderr, io.env)

    pid = running_pid(locations.pid_file)
    mpg_pid = None if pid else live_pid_in(locations.mpg_pid_file)
    state = f"running (PID {pid})" if pid else f"MPG is running (PID {mpg_pid})" if mpg_pid else "not running"
    console.print(plain(f"Profile:  {locations.profile}"))
    console.print(plain(f"Config:   {config_path}"))
    console.print(plain(f"Gateway:  {state}", "green" if pid or mpg_pid else "yellow"))
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
    for session in sorted(sessions, key=lambda s: s.last_activity_ms, reverse=True):
        table.add_row(
            plain(_project_name(config, session)),
            plain(_thread_label(session)),
            plain(session.agent or session.key.partition(":")[2] or "-"),
            plain(session.session_id or "— (no run finished yet)"),
            plain(format_age(now - session.last_activity_ms / 1000)),
            plain(session.worktree_path or session.cwd),
        )
    console.print(table)
    return EXIT_OK
