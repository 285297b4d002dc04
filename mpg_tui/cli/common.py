"""What every subcommand shares: its streams and surroundings, and rich output helpers."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.text import Text

from mpg_tui.core.clock import SystemClock
from mpg_tui.timefmt import format_duration

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
"""A broken config, an unusable location or bad usage."""


@dataclass
class Io:
    """A command's input, output and surroundings, injectable for tests."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    env: Mapping[str, str]
    cwd: Path
    now: Callable[[], float] = field(default_factory=lambda: SystemClock().now)
    """Wall-clock seconds since the epoch."""

    @classmethod
    def from_process(cls) -> Io:
        return cls(stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr, env=os.environ, cwd=Path.cwd())


def make_console(stream: TextIO, env: Mapping[str, str]) -> Console:
    """A rich console on ``stream``; wide when piped so paths and IDs are not folded."""
    interactive = stream.isatty()
    width = None if interactive else int(env.get("COLUMNS") or 160)
    return Console(file=stream, width=width, highlight=False, soft_wrap=False, emoji=False)


def plain(value: object, style: str = "") -> Text:
    """A table cell or line that never interprets ``[markup]`` in user data."""
    return Text(str(value), style=style)


format_age = format_duration
"""``42s``, ``5m``, ``3h 04m``, ``2d 03h``: ages read as everywhere else in mpg-tui."""
