"""How the gateway's own posts look: agent reply embeds, handoff announcements, notices.

Agent replies go out as embeds (MPG's format): 4096-character description chunks, the
author line naming the agent's role and name, ``(cont.)`` on later chunks, and a colour
per agent from a fixed 10-colour palette chosen by MPG's stable string hash, so an agent
keeps its colour across restarts and across MPG and mpg-tui. The notices the gateway
posts while working ("Still working…", "Handing off to…") are defined here too, so
:mod:`mpg_tui.core.history` can recognise and skip them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mpg_tui.config import Agent
from mpg_tui.core.chunking import EMBED_LIMIT, chunk_text
from mpg_tui.core.ports import Embed

PALETTE: tuple[int, ...] = (
    0x3498DB,  # blue
    0xE74C3C,  # red
    0x2ECC71,  # green
    0x9B59B6,  # purple
    0xF39C12,  # orange
    0x1ABC9C,  # teal
    0xE91E63,  # pink
    0xFF9800,  # amber
    0x00BCD4,  # cyan
    0x8BC34A,  # lime
)
"""MPG's colours, readable on both light and dark Discord themes."""

CONTINUED = " (cont.)"
_NAME_SEPARATOR = " · @"

EYES = "👀"
"""The reaction put on a message the gateway picked up."""
STOPPED = "⏹️"
"""Before the line that tells a thread its turn was stopped (``!stop``)."""
SESSION_EXPIRED_NOTICE = "⚠️ Previous session expired — starting fresh."
SESSION_CHANGED_NOTICE = "⚠️ Claude started a new session — previous conversation context may be lost."
RECOVERED_PREFIX = "Resumed after gateway restart"


def agent_color(name: str) -> int:
    """The palette colour of an agent: MPG's ``(h << 5) - h + charCode`` hash, in 32-bit arithmetic.

    Python's own ``hash()`` is salted per process, so it would repaint agents on every start.
    """
    h = 0
    for char in name:
        code = ord(char)
        if code > 0xFFFF:
            # JavaScript iterates code points but charCodeAt(0) reads the high surrogate.
            code = 0xD800 + ((code - 0x10000) >> 10)
        h = (h * 31 + code) & 0xFFFFFFFF
    signed = h - 0x1_0000_0000 if h & 0x8000_0000 else h
    return PALETTE[abs(signed) % len(PALETTE)]


def agent_author(agent: Agent, *, continued: bool = False) -> str:
    """The embed author line: ``Product Manager · @pm``, plus ``(cont.)`` on later chunks."""
    return f"{agent.role}{_NAME_SEPARATOR}{agent.name}{CONTINUED if continued else ''}"


def agent_embeds(agent: Agent, text: str) -> list[Embed]:
    """One embed per 4096-character chunk of ``text``, all in the agent's colour."""
    color = agent_color(agent.name)
    return [
        Embed(description=chunk, author=agent_author(agent, continued=i > 0), color=color)
        for i, chunk in enumerate(chunk_text(text, EMBED_LIMIT))
    ]


def handoff_text(to_agent: str) -> str:
    """The plain announcement of a handoff hop."""
    return f"Handing off to @{to_agent}..."


def handoff_embed(to_agent: Agent) -> Embed:
    """The announcement of a handoff hop, in the colour of the agent taking over (as MPG does)."""
    return Embed(
        description=f"Handing off to **@{to_agent.name}**...",
        author=agent_author(to_agent),
        color=agent_color(to_agent.name),
    )


@dataclass(frozen=True)
class EmbedAuthor:
    """An agent embed's author line, read back (for thread history)."""

    role: str
    agent: str | None
    """The agent's name, when the line carries it (MPG's own embeds carry only the role)."""
    continued: bool


def parse_author(author: str) -> EmbedAuthor:
    continued = author.endswith(CONTINUED)
    if continued:
        author = author[: -len(CONTINUED)]
    role, separator, name = author.rpartition(_NAME_SEPARATOR)
    if separator and role and name and " " not in name:
        return EmbedAuthor(role=role, agent=name.lower(), continued=continued)
    return EmbedAuthor(role=author, agent=None, continued=continued)


def still_working_text(elapsed_s: float) -> str:
    """MPG's periodic note on a long run: ``⏳ Still working… (5m elapsed)``."""
    return f"⏳ Still working… ({max(0, int(elapsed_s)) // 60}m elapsed)"


def queued_text(position: int) -> str:
    """The note on a message that waits behind others for the same session."""
    return f"⏳ queued #{position}"


_NOTICE = re.compile(
    r"""^\W*(?:
        handing\ off\ to\b
      | still\ working\b
      | queued\ \#\d+
      | previous\ session\ expired\b
      | claude\ started\ a\ new\ session\b
      | agent\ turn\ limit\ reached\b
      | \*\*error\*\*
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_NOTICE_MARKS = ("👀", "⏳", "⚠️", "⚠")


def is_notice(text: str) -> bool:
    """Whether a bot message is one of the gateway's status lines rather than a reply."""
    stripped = text.lstrip()
    return stripped.startswith(_NOTICE_MARKS) or bool(_NOTICE.match(stripped))
