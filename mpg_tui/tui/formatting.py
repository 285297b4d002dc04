"""How the cockpit writes numbers, times, states and paths: short, aligned, colour-coded.

Pure functions returning ``str`` or Rich ``Text``, so the panes stay small and the
formats are tested without a running app. The colours are the calm Nord palette the
cockpit's stylesheet uses. Durations and ages are spelt by :mod:`mpg_tui.timefmt`; the
names here are the cockpit's for them.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from pathlib import Path

from rich.text import Text

from mpg_tui.core.events import ConnectionState, SessionState
from mpg_tui.timefmt import format_age, format_ago, format_duration, format_run_length

RUNNING = "#a3be8c"
QUEUED = "#ebcb8b"
RECOVERING = "#d08770"
IDLE = "#7b88a1"
ERROR = "#bf616a"
ACCENT = "#88c0d0"
MUTED = "#616e88"
TEXT = "#d8dee9"

STATE_STYLE: dict[str, tuple[str, str]] = {
    "running": ("●", RUNNING),
    "queued": ("◔", QUEUED),
    "recovering": ("↻", RECOVERING),
    "held": ("⏸", ACCENT),
    "idle": ("○", IDLE),
}

CONNECTION_STYLE: dict[str, tuple[str, str]] = {
    "ready": ("●", RUNNING),
    "connecting": ("◌", QUEUED),
    "resuming": ("↻", QUEUED),
    "disconnected": ("○", ERROR),
}

NONE = "—"
"""Shown where a value does not exist yet (no session ID, no cost)."""


def state_text(state: SessionState | str, *, failed: bool = False) -> Text:
    """``● running`` in the state's colour; unknown states are shown plainly.

    ``failed`` marks an idle session whose last run failed with a red ``✗``.
    """
    glyph, colour = STATE_STYLE.get(state, ("?", TEXT))
    if failed and state == "idle":
        return Text.assemble(("✗ ", ERROR), (state, colour))
    return Text(f"{glyph} {state}", style=colour)


def connection_text(state: ConnectionState | str) -> Text:
    glyph, colour = CONNECTION_STYLE.get(state, ("?", TEXT))
    return Text(f"{glyph} Discord {state}", style=f"bold {colour}")


# The cockpit's names for the spellings in mpg_tui.timefmt, which owns them.
age = format_age
"""A compact age: ``now``, ``42s``, ``7m``, ``3h``, ``2d``."""
ago = format_ago
"""``age`` for past moments: ``now`` or ``7m ago``."""
duration = format_run_length
"""Run lengths: ``850ms``, ``12.3s``, ``4m05s``, ``2h07m``."""
uptime = format_duration
"""``45s``, ``12m``, ``2h 03m``, ``3d 04h``: the gateway's one spelling of a duration."""


def cost(usd: float) -> str:
    """Dollars with enough digits to tell cheap runs apart; ``—`` for nothing spent."""
    if usd <= 0:
        return NONE
    if usd < 10:
        return f"${usd:.3f}"
    return f"${usd:,.2f}"


def tokens(count: int) -> str:
    """``950``, ``12.4k``, ``3.1M``; ``—`` for none."""
    if count <= 0:
        return NONE
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.1f}M"


def short_id(session_id: str | None, width: int = 8) -> str:
    """The first characters of a claude session ID: enough to recognise, short enough to align."""
    return session_id[:width] if session_id else NONE


def home_relative(path: str) -> str:
    """Show paths under the operator's home as ``~/...``."""
    home = str(Path.home())
    if home not in ("", "/") and (path == home or path.startswith(home + "/")):
        return "~" + path[len(home) :]
    return path


def clock_time(at: float) -> str:
    """Local wall-clock time of day, for the event log."""
    return time.strftime("%H:%M:%S", time.localtime(at))


def command_line(argv: Sequence[str], cwd: str | None = None) -> str:
    """A copy-pasteable shell line for an argument list (display only; never executed)."""
    line = shlex.join(argv)
    return f"cd {shlex.quote(cwd)} && {line}" if cwd else line


def truncate(text: str, width: int) -> str:
    """One line of at most ``width`` characters, ending in ``…`` when cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"
