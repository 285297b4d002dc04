"""``mpg-tui logs``: the profile's JSON log, filtered by level and project, optionally followed."""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

from rich.text import Text

from mpg_tui.cli.common import EXIT_OK, Io, make_console
from mpg_tui.config import ConfigError, load_config
from mpg_tui.locations import Locations, resolve_locations
from mpg_tui.logs import LogEntry, level_number, log_files, parse_line

FOLLOW_INTERVAL = 0.25
_STYLES = {"debug": "dim", "info": "", "warn": "yellow", "error": "bold red"}


def _project_aliases(wanted: str, locations: Locations) -> set[str]:
    """``wanted`` plus the channel ID or name it stands for, when the config says so."""
    aliases = {wanted.lower()}
    if locations.config_path is None:
        return aliases
    try:
        config = load_config(locations.config_path)
    except ConfigError:
        return aliases  # a broken config must not keep anyone from reading the log
    for view in config.views():
        if wanted.lower() in (view.key.lower(), view.name.lower()):
            aliases |= {view.key.lower(), view.name.lower()}
    return aliases


def make_filter(min_level: int, projects: set[str] | None) -> Callable[[LogEntry], bool]:
    def keep(entry: LogEntry) -> bool:
        if entry.levelno < min_level:
            return False
        if projects is None:
            return True
        values = (entry.extra.get("project"), entry.extra.get("project_key"), entry.extra.get("projectKey"))
        return any(v is not None and str(v).lower() in projects for v in values)

    return keep


def render(entry: LogEntry) -> Text:
    """One readable line (plus the traceback, if any); log text is never read as markup."""
    try:
        when = datetime.fromisoformat(entry.ts.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        when = entry.ts
    style = _STYLES.get(entry.level, "")
    line = Text(f"{when} ", style="dim")
    line.append(f"{entry.level:<5} ", style=style or "bold")
    if entry.logger:
        line.append(f"{entry.logger}: ", style="cyan")
    line.append(entry.msg, style=style)
    for key, value in entry.extra.items():
        line.append(f"  {key}={value}", style="dim")
    if entry.exc:
        line.append(f"\n{entry.exc}", style="red")
    return line


def read_current(path: Path) -> tuple[list[str], tuple[int, int] | None]:
    """The complete lines of ``path`` now, and ``(inode, offset)`` just past the last one."""
    try:
        with path.open("rb") as handle:
            data = handle.read()
            inode = os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return [], None
    complete = data[: data.rfind(b"\n") + 1]
    lines = complete.decode("utf-8", errors="replace").splitlines()
    return lines, (inode, len(complete))


def follow_lines(
    path: Path,
    *,
    should_stop: Callable[[], bool],
    start: tuple[int, int] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = FOLLOW_INTERVAL,
) -> Iterator[str]:
    """Complete lines appended to ``path``, across rotation, until ``should_stop()``.

    ``start`` is ``(inode, offset)`` from :func:`read_current`: following resumes exactly
    there; without it (or once the file was replaced) a file is read from its beginning.
    Polls: a sleep loop is the simplest thing that works everywhere, and a log viewer a
    quarter of a second behind is fine. After a rotation the old file is read to its end
    before the new one is opened, so no line is lost.
    """
    handle: IO[bytes] | None = None
    inode: int | None = None
    partial = b""
    try:
        while not should_stop():
            if handle is None:
                try:
                    handle = path.open("rb")
                except FileNotFoundError:
                    sleep(interval)
                    continue
                inode = os.fstat(handle.fileno()).st_ino
                if start is not None and start[0] == inode:
                    handle.seek(start[1])
                start = None
            chunk = handle.read()
            if chunk:
                *lines, partial = (partial + chunk).split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", errors="replace")
                continue
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            if current is None or current.st_ino != inode or current.st_size < handle.tell():
                handle.close()
                handle = None
                if partial:
                    yield partial.decode("utf-8", errors="replace")
                    partial = b""
                continue
            sleep(interval)
    finally:
        if handle is not None:
            handle.close()


def _file_lines(paths: list[Path]) -> Iterator[str]:
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as handle:
            yield from handle


def run(
    args: argparse.Namespace,
    io: Io,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    locations = resolve_locations(args.config, args.profile, io.cwd, io.env)
    console = make_console(io.stdout, io.env)
    min_level = level_number(args.level) if args.level else logging.DEBUG
    projects = _project_aliases(args.project, locations) if args.project else None
    keep = make_filter(min_level, projects)

    if not log_files(locations.log_file):
        console.print(Text(f"No log file yet ({locations.log_file})."))
        if not args.follow:
            return EXIT_OK
    # The rotated backups, then the current file up to a known offset, which is exactly
    # where following picks up: nothing is shown twice or skipped.
    older = [p for p in log_files(locations.log_file) if p != locations.log_file]
    current, start = read_current(locations.log_file)
    if args.lines:
        lines = itertools.chain(_file_lines(older), current)
        entries = (e for line in lines if (e := parse_line(line)) is not None and keep(e))
        for entry in deque(entries, maxlen=args.lines):
            console.print(render(entry))
    if not args.follow:
        return EXIT_OK
    try:
        for line in follow_lines(locations.log_file, should_stop=should_stop, start=start, sleep=sleep):
            followed = parse_line(line)
            if followed is not None and keep(followed):
                console.print(render(followed))
    except KeyboardInterrupt:
        pass
    return EXIT_OK
