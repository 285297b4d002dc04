"""Which agent a message goes to, and whether an agent's reply hands work on.

Target priority (MPG's): ``!ask <agent> <msg>`` / ``!<agent> <msg>`` (built-in command
names win over agent names), then an ``@agent`` mention anywhere in the text, then the
last agent that answered in the thread (sticky), else the thread's default session.

Mentions match configured agent names only, case-insensitively and as whole words: not
inside an e-mail address (``a@pm.com``), not a Discord user or role mention (``<@123>``),
not a longer name (``@pm-lead`` is not ``@pm``). The first mention wins. A mention that
opens the message is removed from the prompt (with a following ``:`` or ``,``); one in
the middle still picks the agent but stays in the prompt, because it is part of the
sentence ("can @pm look at this?").

A reply hands off when a line reads ``HANDOFF @agent: <task>`` (any line, any case,
markdown emphasis tolerated) or when the reply begins with ``@agent``; a mention in the
middle of prose does not. The whole reply becomes the next agent's prompt.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from mpg_tui.config import Agent

BUILTIN_COMMANDS = frozenset({"sessions", "session", "restart", "kill", "agents", "help", "ask", "continue"})
"""``!`` words that are never read as ``!<agent>`` shorthand."""

EMPTY_PROMPT_TEXT = "Please include a message with your request."
ASK_USAGE = "Usage: `!ask <agent> <message>`"

TargetVia = Literal["command", "mention", "sticky", "default"]


def session_key(thread_id: str, agent: str | None) -> str:
    """``<threadId>`` for the default session, ``<threadId>:<agent>`` for an agent's."""
    return f"{thread_id}:{agent}" if agent else thread_id


@dataclass(frozen=True)
class AgentTarget:
    """Where a human message goes: an agent (or None for the default session) and the prompt."""

    agent: Agent | None
    prompt: str
    via: TargetVia

    @property
    def agent_name(self) -> str | None:
        return self.agent.name if self.agent else None

    def session_key(self, thread_id: str) -> str:
        return session_key(thread_id, self.agent_name)


@dataclass(frozen=True)
class UnknownAgent:
    """``!ask`` named no agent, or one this project does not have."""

    name: str

    def reply(self, agents: Mapping[str, Agent]) -> str:
        return unknown_agent_text(self.name, agents)


def unknown_agent_text(name: str, agents: Mapping[str, Agent]) -> str:
    if not agents:
        head = f"Unknown agent `{name}`" if name else "No agent named"
        return f"{head} — this project has no agents configured."
    listing = "\n".join(f"- `{a.name}` — {a.role}" for a in agents.values())
    head = f"Unknown agent `{name}`. Available agents:" if name else "Available agents:"
    return f"{head}\n{listing}\n\n{ASK_USAGE}"


_ASK = re.compile(r"^!ask(?:\s+(?P<name>\S+)(?:\s+(?P<prompt>.*))?)?\s*$", re.IGNORECASE | re.DOTALL)
_SHORTHAND = re.compile(r"^!(?P<name>[^\s!]+)(?:\s+(?P<prompt>.*))?$", re.DOTALL)
_LEADING_PUNCTUATION = re.compile(r"^\s*[:,]?\s*")


def parse_agent_command(text: str, agents: Mapping[str, Agent]) -> AgentTarget | UnknownAgent | None:
    """``!ask <agent> <msg>`` or ``!<agent> <msg>``; None when the text is neither."""
    stripped = text.strip()
    ask = _ASK.match(stripped)
    if ask:
        name = (ask["name"] or "").lower()
        agent = agents.get(name)
        if agent is None:
            return UnknownAgent(name)
        return AgentTarget(agent, (ask["prompt"] or "").strip(), "command")
    short = _SHORTHAND.match(stripped)
    if short:
        name = short["name"].lower()
        agent = agents.get(name)
        if agent is not None and name not in BUILTIN_COMMANDS:
            return AgentTarget(agent, (short["prompt"] or "").strip(), "command")
    return None


@functools.lru_cache(maxsize=256)
def _mention_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    # Longest names first so "@pm-lead" is not read as "@pm" when both exist.
    alternation = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![\w@<&!])@(?P<name>{alternation})(?![\w-])", re.IGNORECASE)


@functools.lru_cache(maxsize=256)
def _handoff_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    alternation = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(
        rf"^[ \t>*_~]*HANDOFF[ \t]+@(?P<name>{alternation})(?![\w-])[ \t]*:[*_~]*[ \t]*(?P<task>.*)$",
        re.IGNORECASE | re.MULTILINE,
    )


def _names(agents: Mapping[str, Agent]) -> tuple[str, ...]:
    return tuple(sorted(agents))


@dataclass(frozen=True)
class Mention:
    agent: Agent
    start: int
    end: int


def find_mention(text: str, agents: Mapping[str, Agent]) -> Mention | None:
    """The first ``@agent`` mention of a configured agent in ``text``."""
    if not agents:
        return None
    match = _mention_pattern(_names(agents)).search(text)
    if match is None:
        return None
    return Mention(agents[match["name"].lower()], match.start(), match.end())


def _leading_mention(text: str, agents: Mapping[str, Agent]) -> tuple[Agent, str] | None:
    """The agent a text opens with, and the text after the mention."""
    if not agents:
        return None
    stripped = text.lstrip()
    match = _mention_pattern(_names(agents)).match(stripped)
    if match is None:
        return None
    rest = _LEADING_PUNCTUATION.sub("", stripped[match.end() :], count=1)
    return agents[match["name"].lower()], rest


def resolve_target(text: str, agents: Mapping[str, Agent], *, sticky: str | None = None) -> AgentTarget | UnknownAgent:
    """Apply MPG's priority to a human message; ``sticky`` is the thread's last agent, if any.

    The prompt may come back empty (``@pm`` alone): answer with :data:`EMPTY_PROMPT_TEXT`
    unless the message brought attachments.
    """
    command = parse_agent_command(text, agents)
    if command is not None:
        return command
    leading = _leading_mention(text, agents)
    if leading is not None:
        agent, rest = leading
        return AgentTarget(agent, rest.strip(), "mention")
    mention = find_mention(text, agents)
    if mention is not None:
        return AgentTarget(mention.agent, text.strip(), "mention")
    last = agents.get(sticky.lower()) if sticky is not None else None
    if last is not None:
        return AgentTarget(last, text.strip(), "sticky")
    return AgentTarget(None, text.strip(), "default")


@dataclass(frozen=True)
class Handoff:
    """An agent reply that hands work to ``agent``."""

    agent: Agent
    task: str
    """The task as written on the handoff line (for display; the agent gets ``prompt``)."""
    prompt: str
    """What the next agent is sent: the whole reply, as MPG does."""
    is_self: bool
    """The reply handed off to the agent that wrote it: the chain must stop."""


def detect_handoff(reply: str, agents: Mapping[str, Agent], *, current: str | None) -> Handoff | None:
    """The handoff an agent's ``reply`` asks for, if any; ``current`` is the agent that wrote it.

    A handoff to another agent wins over one to the writer itself; only when every
    handoff in the reply names its writer is a self-handoff reported.
    """
    if not agents:
        return None
    candidates = [
        (agents[m["name"].lower()], m["task"].strip()) for m in _handoff_pattern(_names(agents)).finditer(reply)
    ]
    leading = _leading_mention(reply, agents)
    if leading is not None:
        agent, rest = leading
        candidates.append((agent, rest.split("\n", 1)[0].strip()))
    if not candidates:
        return None
    own = (current or "").lower()
    agent, task = next(((a, t) for a, t in candidates if a.name != own), candidates[0])
    return Handoff(agent=agent, task=task, prompt=reply, is_self=agent.name == own)
