"""The gateway and its journal: states as a message goes, leftovers run once, catch-up in order and once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mpg_tui.config import parse_config
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.gateway import LOST_RUN_TEXT, Gateway
from mpg_tui.core.journal import Journal
from mpg_tui.core.ports import InboundMessage
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.store import SessionStore
from mpg_tui.sandbox.inmemory import InMemoryChat
from tests.unit.fake_runner import FakeRunner

CHANNEL = "123456789012345678"
NOW = 1_700_000_000.0


def message(mid: str, content: str, *, thread: str | None = None, at: float = NOW) -> InboundMessage:
    return InboundMessage(
        id=mid,
        channel_id=thread or CHANNEL,
        parent_channel_id=CHANNEL if thread else None,
        author_id="7",
        author_name="ann",
        content=content,
        created_at=at,
    )


@dataclass
class Rig:
    gateway: Gateway
    runner: FakeRunner
    chat: InMemoryChat
    journal: Journal
    clock: FakeClock


MakeRig = Callable[..., Rig]


@pytest.fixture
async def make_rig(tmp_path: Path) -> AsyncIterator[MakeRig]:
    made: list[SessionManager] = []

    def make(journal: Journal | None = None, **defaults: object) -> Rig:
        config = parse_config(
            {"defaults": dict(defaults), "projects": {CHANNEL: {"directory": str(tmp_path), "worktrees": False}}}
        )
        clock, bus, runner, chat = FakeClock(start=NOW), EventBus(), FakeRunner(), InMemoryChat()
        journal = journal or Journal(tmp_path / "journal.sqlite3", clock)
        sessions = SessionManager(
            config=config,
            store=SessionStore(tmp_path / "sessions.json", clock=clock),
            runners={"direct": runner},
            bus=bus,
            clock=clock,
            worktrees=None,
        )
        made.append(sessions)
        gateway = Gateway(config=config, sessions=sessions, bus=bus, clock=clock, chat=chat, journal=journal)
        return Rig(gateway, runner, chat, journal, clock)

    yield make
    for sessions in made:
        await sessions.close()


async def test_a_message_is_answered_once_and_its_journal_entry_ends_answered(make_rig: MakeRig) -> None:
    rig = make_rig()
    msg = message("1000", "hello")
    await rig.gateway.handle_message(msg)
    await rig.gateway.handle_message(msg)  # Discord (or catch-up) delivering it again

    assert [r.prompt for r in rig.runner.requests] == ["hello"]
    entry = rig.journal.entry("1000")
    assert entry is not None and (entry.state, entry.thread_id, entry.session_key) == ("answered", "1000", "1000")


def state_of(rig: Rig, message_id: str) -> str | None:
    entry = rig.journal.entry(message_id)
    return entry.state if entry is not None else None


async def test_a_message_is_running_with_its_session_once_its_turn_starts_and_queued_while_it_waits(
    make_rig: MakeRig,
) -> None:
    rig = make_rig()
    held = rig.runner.hold()
    first = asyncio.create_task(rig.gateway.handle_message(message("1000", "first")))
    await rig.runner.wait_running()
    second = asyncio.create_task(rig.gateway.handle_message(message("1001", "second", thread="1000")))
    # "running" is written on the loop's pass right after the spawn; "queued" once the second
    # turn finds the session busy. A few passes of the loop, no time.
    for _ in range(100):
        if state_of(rig, "1000") == "running" and state_of(rig, "1001") == "queued":
            break
        await asyncio.sleep(0)

    running, waiting = rig.journal.entry("1000"), rig.journal.entry("1001")
    assert running is not None and (running.state, running.session_key) == ("running", "1000")
    assert waiting is not None and (waiting.state, waiting.thread_id, waiting.session_key) == ("queued", "1000", "1000")
    held.release()
    await asyncio.gather(first, second)
    states = [entry.state for m in ("1000", "1001") if (entry := rig.journal.entry(m))]
    assert states == ["answered", "answered"]


async def test_leftovers_are_run_again_or_told_once_and_live_messages_are_not_leftovers(
    tmp_path: Path, make_rig: MakeRig
) -> None:
    clock = FakeClock(start=NOW)
    journal = Journal(tmp_path / "journal.sqlite3", clock)
    for mid in ("1000", "1001", "1002"):
        journal.claim(message(mid, f"ask {mid}", thread="1000" if mid != "1000" else None), "p")
    journal.mark("1000", "running", thread_id="1000", session_key="1000")
    journal.mark("1001", "queued", thread_id="1000", session_key="1000")
    rig = make_rig(journal)
    held = rig.runner.hold()
    # Taken after start, still running while the leftovers are resumed: not a leftover.
    live = asyncio.create_task(rig.gateway.handle_message(message("1003", "live", thread="1000")))
    await rig.runner.wait_running()
    resumed = asyncio.create_task(rig.gateway.resume_journal())
    held.release()
    await asyncio.gather(live, resumed)
    await rig.gateway.drain(5)
    await rig.gateway.resume_journal()  # nothing is left twice

    assert [r.prompt for r in rig.runner.requests] == ["live", "ask 1001", "ask 1002"]
    assert rig.chat.texts("1000").count(LOST_RUN_TEXT) == 1
    states = [entry.state for m in ("1000", "1001", "1002", "1003") if (entry := rig.journal.entry(m))]
    assert states == ["told", "answered", "answered", "answered"]


async def test_catch_up_handles_what_came_after_the_cursor_in_order_commands_too_and_counts_old_ones(
    make_rig: MakeRig,
) -> None:
    rig = make_rig(catchUpMaxAgeMs=60_000)
    rig.journal.saw(CHANNEL, "1000")
    rig.chat.missed[CHANNEL] = [
        message("999", "before the cursor"),
        message("1001", "too old", at=NOW - 120),
        message("1002", "first"),
        message("1003", "!sessions"),
        message("1004", "second"),
    ]
    report = await rig.gateway.catch_up()
    await rig.gateway.drain(5)
    again = await rig.gateway.catch_up()

    assert (report.handled, report.skipped_old) == (3, 1)
    assert [r.prompt for r in rig.runner.requests] == ["first", "second"]
    command = rig.journal.entry("1003")
    assert command is not None and command.state == "answered"
    assert rig.journal.cursor(CHANNEL) == "1004"
    assert again.handled == 0


async def test_a_channel_the_journal_never_saw_is_marked_not_caught_up(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.chat.missed[CHANNEL] = [message("1001", "answered by someone else long ago")]
    report = await rig.gateway.catch_up()
    assert report.handled == 0 and rig.runner.requests == []
    assert rig.journal.cursor(CHANNEL) == "1001"


async def test_catch_up_off_reads_nothing(make_rig: MakeRig) -> None:
    rig = make_rig(catchUp=False)
    await rig.gateway.catch_up()
    assert rig.chat.reads == []
