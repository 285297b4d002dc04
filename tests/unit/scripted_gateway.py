"""The real Gateway over a scripted runner and a chat that records what it posts, for tests of the faces."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mpg_tui.config import parse_config
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.gateway import Gateway
from mpg_tui.core.ports import Embed, HistoryMessage, InboundMessage
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.store import SessionStore
from mpg_tui.sandbox.inmemory import InMemoryChat
from tests.unit.fake_runner import FakeRunner

WAIT_S = 10.0
CHANNEL = "120000000000000001"
THREAD = "120000000000000500"
PROJECT_DIR = "/srv/mpg/webshop"


class RecordingChat(InMemoryChat):
    """The sandbox's in-memory chat, keeping the text of every post and saying when one arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    async def send(self, channel_id: str, content: str | None = None, embed: Embed | None = None) -> str:
        message_id = await super().send(channel_id, content, embed)
        self.sent.append((channel_id, content or (embed.description if embed else "")))
        self.changed.set()
        return message_id

    async def history(self, channel_id: str, limit: int, before: str | None = None) -> list[HistoryMessage]:
        return []

    def texts(self, channel_id: str) -> list[str]:
        return [text for where, text in self.sent if where == channel_id]

    async def until(self, needle: str, channel_id: str) -> str:
        async with asyncio.timeout(WAIT_S):
            while True:
                found = [t for t in self.texts(channel_id) if needle in t]
                if found:
                    return found[-1]
                self.changed.clear()
                await self.changed.wait()


class Scripted:
    """A real gateway (sessions, holds, conversation book) whose claude is a script."""

    def __init__(self, tmp_path: Path, clock: FakeClock) -> None:
        config = parse_config(
            {"projects": {CHANNEL: {"name": "webshop", "directory": PROJECT_DIR, "worktrees": False, "agents": ["pm"]}}}
        )
        self.clock = clock
        self.bus = EventBus(clock)
        self.runner = FakeRunner()
        self.chat = RecordingChat()
        self.sessions = SessionManager(
            config=config,
            store=SessionStore(tmp_path / "sessions.json", clock=clock),
            runners={"direct": self.runner},
            bus=self.bus,
            clock=clock,
            worktrees=None,
            child_env={"CLAUDE_CONFIG_DIR": str(tmp_path / "claude-home")},
        )
        self.gateway = Gateway(config=config, sessions=self.sessions, bus=self.bus, clock=clock, chat=self.chat)
        self._ids = 600

    async def say(self, content: str, *, opener: bool = False) -> None:
        self._ids += 1
        message = InboundMessage(
            id=THREAD if opener else str(self._ids),
            channel_id=CHANNEL if opener else THREAD,
            parent_channel_id=None if opener else CHANNEL,
            author_id="7",
            author_name="ann",
            content=content,
        )
        self.clock.advance(30)
        await self.gateway.handle_message(message)

    async def play(self) -> None:
        """A thread: a plan, a handoff-free reply, a hold with a message waiting, the hand-back."""
        await self.say("@pm plan a dark-mode toggle for the settings page", opener=True)
        self.clock.advance(60)
        grant = await self.gateway.hold(THREAD + ":pm", "cockpit, ann@laptop", lease_s=120)
        waiting = asyncio.create_task(self.say("@pm and mention the contrast checks"))
        await self.chat.until("open in a terminal", THREAD)
        self.clock.advance(20)  # within the lease: the holder hands it back itself
        await self.gateway.release_hold(grant.hold_id)
        await waiting
