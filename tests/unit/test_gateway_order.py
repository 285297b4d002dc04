"""Messages of one thread reach claude in the order they were posted, even while the thread is being opened;
the chat calls that acknowledge a message in a thread come after claude has its prompt, never ahead of it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from mpg_tui.config import parse_config
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.gateway import Gateway
from mpg_tui.core.journal import Journal
from mpg_tui.core.ports import (
    InboundMessage,
)
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.store import SessionStore
from mpg_tui.sandbox.inmemory import InMemoryChat
from tests.unit.fake_runner import FakeRunner

CHANNEL = "123456789012345678"


class SlowThreadChat(InMemoryChat):
    """A chat whose thread creation waits until the test lets it finish."""

    def __init__(self) -> None:
        super().__init__()
        self.creating = asyncio.Event()
        self.finish_creating = asyncio.Event()

    async def create_thread(self, channel_id: str, message_id: str, name: str, auto_archive_minutes: int = 1440) -> str:
        self.creating.set()
        await self.finish_creating.wait()
        return message_id  # as Discord: a thread opened on a message has the message's ID


async def test_a_follow_up_posted_while_its_thread_is_being_opened_runs_after_the_opener(tmp_path: Path) -> None:
    config = parse_config({"projects": {CHANNEL: {"directory": str(tmp_path), "worktrees": False}}})
    clock, bus, runner, chat = FakeClock(), EventBus(), FakeRunner(), SlowThreadChat()
    sessions = SessionManager(
        config=config,
        store=SessionStore(tmp_path / "sessions.json", clock=clock),
        runners={"direct": runner},
        bus=bus,
        clock=clock,
        worktrees=None,
    )
    gateway = Gateway(config=config, sessions=sessions, bus=bus, clock=clock, chat=chat)
    opener = InboundMessage(id="500", channel_id=CHANNEL, author_id="7", author_name="ann", content="first")
    follow_up = InboundMessage(
        id="501", channel_id="500", parent_channel_id=CHANNEL, author_id="7", author_name="ann", content="second"
    )

    opening = asyncio.create_task(gateway.handle_message(opener))
    await chat.creating.wait()  # the opener is inside create_thread; the thread exists for users already
    following = asyncio.create_task(gateway.handle_message(follow_up))
    for _ in range(20):  # let the follow-up run as far as it can
        await asyncio.sleep(0)
    chat.finish_creating.set()
    await asyncio.gather(opening, following)

    assert [request.prompt for request in runner.requests] == ["first", "second"]
    await sessions.close()


class WitnessChat(InMemoryChat):
    """Notes, at each call that acknowledges a message, how many prompts claude had and whether the journal had it."""

    def __init__(self) -> None:
        super().__init__()
        self.runner = FakeRunner()
        self.journal: Journal | None = None
        self.seen: list[tuple[str, int, bool]] = []

    def _note(self, what: str, message_id: str) -> None:
        recorded = self.journal is not None and self.journal.entry(message_id) is not None
        self.seen.append((what, len(self.runner.requests), recorded))

    async def react(self, channel_id: str, message_id: str, emoji: str) -> None:
        self._note("react", message_id)

    async def create_thread(self, channel_id: str, message_id: str, name: str, auto_archive_minutes: int = 1440) -> str:
        self._note("thread", message_id)
        return message_id

    @contextlib.asynccontextmanager
    async def typing(self, channel_id: str) -> AsyncIterator[None]:
        self.seen.append(("typing", len(self.runner.requests), False))
        yield


async def test_in_a_thread_the_reaction_and_typing_follow_claudes_start_and_the_journal_comes_first(
    tmp_path: Path,
) -> None:
    config = parse_config({"projects": {CHANNEL: {"directory": str(tmp_path), "worktrees": False}}})
    clock, bus, chat = FakeClock(), EventBus(), WitnessChat()
    chat.journal = Journal(None, clock)
    sessions = SessionManager(
        config=config,
        store=SessionStore(tmp_path / "sessions.json", clock=clock),
        runners={"direct": chat.runner},
        bus=bus,
        clock=clock,
        worktrees=None,
    )
    gateway = Gateway(config=config, sessions=sessions, bus=bus, clock=clock, chat=chat, journal=chat.journal)

    await gateway.handle_message(
        InboundMessage(id="500", channel_id=CHANNEL, author_id="7", author_name="ann", content="first")
    )
    # A message that opens a thread: 👀, then the thread (as MPG), both before claude; typing once it runs.
    assert chat.seen == [("react", 0, True), ("thread", 0, True), ("typing", 1, False)]

    chat.seen.clear()
    await gateway.handle_message(
        InboundMessage(
            id="501", channel_id="500", parent_channel_id=CHANNEL, author_id="7", author_name="ann", content="second"
        )
    )
    # In the thread, claude has the second prompt before the 👀 and the typing indicator are asked for.
    assert sorted(chat.seen) == [("react", 2, True), ("typing", 2, False)]
    assert [request.prompt for request in chat.runner.requests] == ["first", "second"]
    entry = chat.journal.entry("501")
    assert entry is not None and entry.state == "answered"
    await sessions.close()
