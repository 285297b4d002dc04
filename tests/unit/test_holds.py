"""Holds: a session lent to a terminal runs nothing until it is handed back, and a dead holder's lease runs out.

The real Gateway and SessionManager on a scripted runner, a recording chat and a
FakeClock: leases run out when the test moves the clock, never by waiting.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mpg_tui.config import parse_config
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.conversation import ConversationBook
from mpg_tui.core.events import MessageReceived, ReplySent, SessionReleased
from mpg_tui.core.gateway import Gateway
from mpg_tui.core.holds import HoldError
from mpg_tui.core.ports import InboundMessage
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.store import SessionStore
from mpg_tui.core.transcripts import project_dirs
from tests.unit.fake_runner import FakeRunner
from tests.unit.scripted_gateway import RecordingChat

CHANNEL = "123456789012345678"
THREAD = "500"


@dataclass
class Rig:
    gateway: Gateway
    sessions: SessionManager
    runner: FakeRunner
    chat: RecordingChat
    clock: FakeClock
    bus: EventBus
    project: Path
    claude_home: Path
    ids: int = 600

    def message(self, content: str, *, thread: str | None = THREAD) -> InboundMessage:
        self.ids += 1
        if thread is None:
            return InboundMessage(id=THREAD, channel_id=CHANNEL, author_id="7", author_name="ann", content=content)
        return InboundMessage(
            id=str(self.ids),
            channel_id=thread,
            parent_channel_id=CHANNEL,
            author_id="7",
            author_name="ann",
            content=content,
        )

    def transcript(self, session_id: str) -> Path:
        return project_dirs(self.claude_home, str(self.project))[0] / f"{session_id}.jsonl"

    def write_turns(self, session_id: str, *prompts: str, first_uuid: str = "u-0") -> None:
        path = self.transcript(session_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as file:
            for n, prompt in enumerate(prompts):
                uid = first_uuid if not path.stat().st_size and n == 0 else f"u-{session_id}-{prompt}"
                for record in (
                    {"type": "user", "uuid": uid, "message": {"role": "user", "content": prompt}},
                    {"type": "user", "message": {"role": "user", "content": [{"type": "tool_result"}]}},
                    {"type": "assistant", "message": {"role": "assistant", "content": "ok"}},
                ):
                    file.write(json.dumps(record) + "\n")
                    file.flush()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    project = tmp_path / "project"
    project.mkdir()
    config = parse_config({"projects": {CHANNEL: {"directory": str(project), "worktrees": False, "agents": ["pm"]}}})
    clock, bus, runner, chat = FakeClock(), EventBus(), FakeRunner(), RecordingChat()
    claude_home = tmp_path / "claude-home"
    sessions = SessionManager(
        config=config,
        store=SessionStore(tmp_path / "sessions.json", clock=clock),
        runners={"direct": runner},
        bus=bus,
        clock=clock,
        worktrees=None,
        child_env={"CLAUDE_CONFIG_DIR": str(claude_home)},
    )
    gateway = Gateway(config=config, sessions=sessions, bus=bus, clock=clock, chat=chat)
    yield Rig(gateway, sessions, runner, chat, clock, bus, project, claude_home)
    await sessions.close()


async def opened(rig: Rig) -> str:
    """A thread whose session has run once (so it has a claude session to resume)."""
    await rig.gateway.handle_message(rig.message("first", thread=None))
    info = rig.gateway.session(THREAD)
    assert info is not None and info.session_id == "session-1"
    rig.write_turns("session-1", "first")
    return info.session_id


async def test_a_held_session_runs_nothing_until_handed_back_then_resumes_and_reports_the_terminal_turns(
    rig: Rig,
) -> None:
    session_id = await opened(rig)
    grant = await rig.gateway.hold(THREAD, "cockpit")
    assert (grant.key, grant.session_id, grant.cwd) == (THREAD, session_id, str(rig.project))
    assert grant.env == {"CLAUDE_CONFIG_DIR": str(rig.claude_home)}
    info = rig.gateway.session(THREAD)
    assert info is not None and info.state == "held" and info.held_by == "cockpit"

    first = asyncio.create_task(rig.gateway.handle_message(rig.message("while held 1")))
    second = asyncio.create_task(rig.gateway.handle_message(rig.message("while held 2")))
    await rig.chat.until("open in a terminal", THREAD)
    await asyncio.sleep(0)
    assert len(rig.runner.requests) == 1  # only the first, before the hold
    assert sum("open in a terminal" in t for t in rig.chat.texts(THREAD)) == 1  # told once per hold

    rig.write_turns(session_id, "in the terminal", "and again")
    back = await rig.gateway.release_hold(grant.hold_id)
    await asyncio.gather(first, second)

    assert back is not None and back.turns == 2 and back.session_id == session_id
    notice = next(t for t in rig.chat.texts(THREAD) if t.startswith("🔓"))
    assert "2 turns taken there" in notice and "Running 2 waiting messages" in notice
    assert [r.prompt for r in rig.runner.requests[1:]] == ["while held 1", "while held 2"]
    assert all(r.session_id == session_id for r in rig.runner.requests[1:])
    assert rig.chat.texts(THREAD).index(notice) < rig.chat.texts(THREAD).index("echo: while held 1")
    assert await rig.gateway.release_hold(grant.hold_id) is None  # once only


async def test_a_hold_whose_holder_stops_renewing_runs_out_and_the_waiting_message_runs(rig: Rig) -> None:
    await opened(rig)
    released = asyncio.create_task(rig.bus.wait_for(SessionReleased, timeout=5))
    grant = await rig.gateway.hold(THREAD, "a cockpit that will crash", lease_s=30)
    waiting = asyncio.create_task(rig.gateway.handle_message(rig.message("queued")))
    await rig.chat.until("open in a terminal", THREAD)

    rig.clock.advance(20)
    assert await rig.gateway.renew_hold(grant.hold_id)  # renewed: a full lease from now
    rig.clock.advance(29)
    assert rig.gateway.session(THREAD).held_by is not None  # type: ignore[union-attr]
    rig.clock.advance(2)  # the holder is gone: no renewal came

    event = await released
    await waiting
    assert event.reason == "holder_gone"  # type: ignore[attr-defined]
    assert rig.runner.requests[-1].prompt == "queued"
    assert any("went away" in t for t in rig.chat.texts(THREAD))
    assert not await rig.gateway.renew_hold(grant.hold_id)


async def test_a_session_the_terminal_continued_under_a_new_id_is_resumed_under_that_id(rig: Rig) -> None:
    session_id = await opened(rig)
    grant = await rig.gateway.hold(THREAD, "cockpit")
    fork = rig.transcript("forked-1")
    fork.write_text(rig.transcript(session_id).read_text(encoding="utf-8"), encoding="utf-8")
    rig.write_turns("forked-1", "in the fork")

    back = await rig.gateway.release_hold(grant.hold_id)
    await rig.gateway.handle_message(rig.message("after"))

    assert back is not None and back.session_id == "forked-1" and back.turns == 1
    assert rig.runner.requests[-1].session_id == "forked-1"


async def test_names_resolve_by_key_thread_or_prefix_and_unknown_or_ambiguous_ones_are_refused(rig: Rig) -> None:
    await opened(rig)
    await rig.gateway.handle_message(rig.message("!ask pm plan it"))
    with pytest.raises(HoldError) as unknown:
        await rig.gateway.hold("999", "cockpit")
    assert unknown.value.code == "not_found"
    with pytest.raises(HoldError) as ambiguous:
        await rig.gateway.hold("50", "cockpit")  # the start of both keys
    assert ambiguous.value.code == "ambiguous" and "500:pm" in ambiguous.value.message

    grant = await rig.gateway.hold("500:p", "cockpit")
    assert grant.key == "500:pm"
    with pytest.raises(HoldError) as twice:
        await rig.gateway.hold("500:pm", "another cockpit")
    assert twice.value.code == "held"


async def test_a_run_in_progress_is_refused_waited_for_or_stopped(rig: Rig) -> None:
    await opened(rig)
    run = rig.runner.hold(THREAD)
    working = asyncio.create_task(rig.gateway.handle_message(rig.message("long job")))
    await run.started.wait()

    with pytest.raises(HoldError) as busy:
        await rig.gateway.hold(THREAD, "cockpit")
    assert busy.value.code == "busy"

    waiting = asyncio.create_task(rig.gateway.hold(THREAD, "cockpit", if_running="wait"))
    await asyncio.sleep(0)
    assert not waiting.done()
    run.release()
    grant = await waiting
    await working
    assert rig.runner.requests[-1].prompt == "long job" and not run.cancelled
    await rig.gateway.release_hold(grant.hold_id)

    run = rig.runner.hold(THREAD)
    working = asyncio.create_task(rig.gateway.handle_message(rig.message("another long job")))
    await run.started.wait()
    grant = await rig.gateway.hold(THREAD, "cockpit", if_running="stop")
    await working
    assert run.cancelled and rig.gateway.session(THREAD).state == "held"  # type: ignore[union-attr]


async def test_killing_a_held_session_ends_its_hold(rig: Rig) -> None:
    await opened(rig)
    grant = await rig.gateway.hold(THREAD, "cockpit")
    assert await rig.gateway.kill(THREAD)
    assert not await rig.gateway.renew_hold(grant.hold_id)
    assert await rig.gateway.release_hold(grant.hold_id) is None


async def test_the_conversation_of_a_thread_is_what_the_gateway_saw_and_sent_newest_last(rig: Rig) -> None:
    await opened(rig)
    grant = await rig.gateway.hold(THREAD, "cockpit")
    waiting = asyncio.create_task(rig.gateway.handle_message(rig.message("while held")))
    await rig.chat.until("open in a terminal", THREAD)
    await rig.gateway.release_hold(grant.hold_id)
    await waiting

    entries = await rig.gateway.conversation(THREAD)
    assert [(e.kind, e.who) for e in entries] == [
        ("message", "ann"),
        ("reply", "Claude"),
        ("held", "gateway"),
        ("message", "ann"),
        ("notice", "gateway"),
        ("released", "gateway"),
        ("notice", "gateway"),
        ("reply", "Claude"),
    ]
    assert entries[1].text == "echo: first" and entries[-1].text == "echo: while held"


def test_the_conversation_book_keeps_a_bounded_number_of_threads_and_entries() -> None:
    bus = EventBus(FakeClock())
    book = ConversationBook(bus, max_threads=2, max_entries=3)
    for thread in ("1", "2", "3"):
        for n in range(5):
            bus.publish(ReplySent(channel_id=thread, chunks=1, text=f"{thread}-{n}"))
    bus.publish(
        MessageReceived(project_key="p", channel_id="c", thread_id="3", message_id="9", author="ann", content="hi")
    )
    assert book.threads() == ["2", "3"]
    assert [e.text for e in book.conversation("3")] == ["3-3", "3-4", "hi"]
    assert book.conversation("1") == []
