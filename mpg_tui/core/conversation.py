"""A thread's conversation as the gateway saw and sent it: people's messages, agents' replies, handoffs,
errors and notices, newest last.

:func:`entry_for` turns a core event into the entry it adds to a thread (faces use it to
follow a thread live); :class:`ConversationBook` keeps the recent entries of the recent
threads, bounded in both directions, for the faces to read a thread from the start.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Literal

from mpg_tui.core.bus import EventBus
from mpg_tui.core.events import (
    TEXT_LIMIT,
    ApprovalDecided,
    ApprovalRequested,
    Event,
    HandoffStep,
    MessageReceived,
    NoticeSent,
    ReplySent,
    SessionHeld,
    SessionReleased,
)

EntryKind = Literal["message", "reply", "handoff", "error", "notice", "held", "released"]
MAX_THREADS = 200
"""Threads kept; the least recently active one goes first."""
MAX_ENTRIES = 200
"""Entries kept per thread; the oldest go first."""
ERROR_PREFIX = "**Error**"


@dataclass(frozen=True)
class ConversationEntry:
    at: float
    kind: EntryKind
    who: str
    """The person, the agent (``@pm``), "Claude", or "gateway"."""
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "kind": self.kind, "who": self.who, "text": self.text}

    @classmethod
    def from_dict(cls, data: Any) -> ConversationEntry:
        kind = str(data.get("kind", "notice"))
        known: tuple[EntryKind, ...] = ("message", "reply", "handoff", "error", "notice", "held", "released")
        entry_kind: EntryKind = next((k for k in known if k == kind), "notice")
        return cls(float(data.get("at", 0.0)), entry_kind, str(data.get("who", "")), str(data.get("text", "")))


def _cut(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def _label(key: str) -> str:
    """How a session is named inside its own thread: its agent, or "Session"."""
    return f"@{key.split(':', 1)[1]}" if ":" in key else "Session"


def entry_for(event: Event) -> tuple[str, ConversationEntry] | None:
    """The thread ``event`` belongs to and the entry it adds there, if it adds one."""
    match event:
        case MessageReceived():
            # A message in a channel opens a thread with the message's own ID.
            thread = event.thread_id or event.message_id
            return thread, ConversationEntry(event.at, "message", event.author, _cut(event.content))
        case ReplySent():
            who = f"@{event.agent}" if event.agent else "Claude"
            return event.channel_id, ConversationEntry(event.at, "reply", who, _cut(event.text))
        case HandoffStep():
            text = f"@{event.from_agent or 'you'} → @{event.to_agent} (turn {event.turn}/{event.max_turns})"
            return event.thread_id, ConversationEntry(event.at, "handoff", "gateway", text)
        case NoticeSent():
            kind: EntryKind = "error" if event.text.startswith(ERROR_PREFIX) else "notice"
            return event.channel_id, ConversationEntry(event.at, kind, "gateway", _cut(event.text))
        case SessionHeld():
            text = f"{_label(event.key)} lent to a terminal ({event.holder})"
            return event.thread_id, ConversationEntry(event.at, "held", "gateway", text)
        case SessionReleased():
            turns = "" if event.turns is None else f", {event.turns} turn{'s' * (event.turns != 1)} taken there"
            why = {"handed_back": "handed back", "holder_gone": "its holder went away", "killed": "killed"}
            text = f"{_label(event.key)} back from the terminal ({why[event.reason]}{turns})"
            return event.thread_id, ConversationEntry(event.at, "released", "gateway", text)
        case ApprovalRequested():
            what = {"tool": f"to use {event.tool}", "question": "a question", "plan": "to leave plan mode"}
            text = f"🔐 {_label(event.key)} asks {what[event.request_kind]}: {event.summary}"
            return event.thread_id, ConversationEntry(event.at, "notice", "gateway", _cut(text))
        case ApprovalDecided():
            return event.thread_id, ConversationEntry(event.at, "notice", "gateway", _decided(event))
    return None


def _decided(event: ApprovalDecided) -> str:
    subject = event.tool if event.request_kind == "tool" else f"the {event.request_kind}"
    if event.reason == "timeout":
        return f"⏱️ {subject}: nobody answered in time, denied"
    if event.reason == "withdrawn":
        return f"↩️ {subject}: withdrawn, the run stopped waiting"
    verdict = {"allow": "allowed once", "allow_session": "allowed for the session", "deny": "denied"}
    if event.request_kind == "question":
        verdict = {**verdict, "allow": "answered"}
    mark = "❌" if event.outcome == "deny" else "✅"
    return f"{mark} {subject}: {verdict[event.outcome]} by {event.decided_by}"


class ConversationBook:
    """The recent conversation of each recent thread, from the bus."""

    def __init__(self, bus: EventBus, *, max_threads: int = MAX_THREADS, max_entries: int = MAX_ENTRIES) -> None:
        self._threads: OrderedDict[str, deque[ConversationEntry]] = OrderedDict()
        self._max_threads = max_threads
        self._max_entries = max_entries
        self.stop = bus.listen(self.add)

    def add(self, event: Event) -> None:
        found = entry_for(event)
        if found is None:
            return
        thread, entry = found
        entries = self._threads.get(thread)
        if entries is None:
            entries = self._threads[thread] = deque(maxlen=self._max_entries)
            while len(self._threads) > self._max_threads:
                self._threads.popitem(last=False)
        else:
            self._threads.move_to_end(thread)
        entries.append(entry)

    def conversation(self, thread_id: str) -> list[ConversationEntry]:
        return list(self._threads.get(thread_id, ()))

    def threads(self) -> list[str]:
        return list(self._threads)
