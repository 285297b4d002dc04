"""Thread history for agents: the conversation so far, prepended to an agent's prompt.

MPG's format::

    <thread-history>
    [alice]: can we add search?
    [pm]: Here is the plan...
    </thread-history>

    <the prompt>

Humans are named by their display name; the bot's agent embeds are attributed to the
agent (read from the embed author; MPG's own embeds name only the role, which is mapped
back to the project's agent). The gateway's own status lines (👀, "Handing off…",
"queued #n", "Still working…", warnings) and ``!`` commands are left out, each message
is cut to :data:`MAX_MESSAGE_CHARS`, and the newest :data:`HISTORY_LIMIT` remain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mpg_tui.config import Agent
from mpg_tui.core.dispatch import BUILTIN_COMMANDS
from mpg_tui.core.embeds import is_notice, parse_author
from mpg_tui.core.ports import HistoryMessage

HISTORY_LIMIT = 20
MAX_MESSAGE_CHARS = 1500
OPEN_TAG = "<thread-history>"
CLOSE_TAG = "</thread-history>"


@dataclass
class _Entry:
    speaker: str
    text: str
    continued: bool = False
    """A later chunk of a long agent reply (an embed marked "(cont.)")."""


def build_history(
    messages: Sequence[HistoryMessage], agents: Mapping[str, Agent] | None = None, *, limit: int = HISTORY_LIMIT
) -> str:
    """The history block for ``messages`` (oldest first), or "" when nothing is worth sending."""
    entries: list[_Entry] = []
    for message in messages:
        entry = _entry(message, agents or {})
        if entry is None:
            continue
        if entry.continued and entries and entries[-1].speaker == entry.speaker:
            entries[-1].text += "\n" + entry.text
            continue
        entries.append(entry)
    kept = entries[-limit:] if limit > 0 else []
    if not kept:
        return ""
    lines = [f"[{e.speaker}]: {_trim(e.text)}" for e in kept]
    return f"{OPEN_TAG}\n" + "\n".join(lines) + f"\n{CLOSE_TAG}\n\n"


def with_history(prompt: str, messages: Sequence[HistoryMessage], agents: Mapping[str, Agent] | None = None) -> str:
    """``prompt`` with the thread's history in front of it (unchanged when there is none)."""
    return build_history(messages, agents) + prompt


def _entry(message: HistoryMessage, agents: Mapping[str, Agent]) -> _Entry | None:
    if not message.is_bot:
        text = message.content.strip()
        if not text or _is_builtin_command(text):
            return None
        return _Entry(message.author, text)
    if message.embeds:
        embed = message.embeds[0]
        description = "\n".join(e.description for e in message.embeds if e.description).strip()
        if not description or is_notice(description) or embed.author is None:
            return None
        author = parse_author(embed.author)
        speaker = author.agent or _agent_by_role(author.role, agents) or author.role
        return _Entry(speaker, description, continued=author.continued)
    text = message.content.strip()
    if not text or is_notice(text):
        return None
    return _Entry(message.author, text)


def _agent_by_role(role: str, agents: Mapping[str, Agent]) -> str | None:
    matches = [a.name for a in agents.values() if a.role.lower() == role.lower()]
    return matches[0] if len(matches) == 1 else None


def _is_builtin_command(text: str) -> bool:
    if not text.startswith("!"):
        return False
    word = text[1:].split(maxsplit=1)[0].lower() if len(text) > 1 else ""
    return word in BUILTIN_COMMANDS - {"ask"}


def _trim(text: str) -> str:
    # A message must not be able to close the block early and pose as the prompt.
    text = text.replace(CLOSE_TAG, "</thread-history\u200b>")
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1].rstrip() + "…"
    return text
