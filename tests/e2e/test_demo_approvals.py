"""The demo's approval scenario through the real gateway: the engineer wants to run the tests.

The core as the runtime builds it (gateway, sessions, approval broker, control socket) runs
the stand-in claude in demo mode. On a warm process (the default) the stand-in asks
``can_use_tool`` on its own pipes; one process a turn (``"warm": false``) it calls the MCP
permission tool, which asks the gateway over the control socket. Either way the request
shows as a card and in the pending approvals, and the requester's answer goes back to the
stand-in, whose reply reaches the thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mpg_tui.config import parse_config
from mpg_tui.control.journal import EventJournal
from mpg_tui.control.server import ControlService, socket_path
from mpg_tui.core.approvals import ApprovalBroker
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import SystemClock
from mpg_tui.core.events import ApprovalDecided, ApprovalRequested, Event
from mpg_tui.core.gateway import Gateway
from mpg_tui.core.ports import CardClick, InboundMessage
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.store import SessionStore
from mpg_tui.runners.approval_tool import ApprovalToolLaunch
from mpg_tui.runners.direct import DirectRunner
from mpg_tui.runners.live import LiveRunner
from mpg_tui.sandbox.agent import install_shim
from mpg_tui.sandbox.agent.personas import TEST_COMMAND
from mpg_tui.sandbox.inmemory import InMemoryChat

pytestmark = pytest.mark.e2e

CHANNEL = "1100000000000000001"
REQUESTER = "42"
STEP_S = 30.0


@dataclass
class Demo:
    gateway: Gateway
    chat: InMemoryChat
    manager: SessionManager
    broker: ApprovalBroker
    runner: LiveRunner
    warm: bool
    events: list[Event] = field(default_factory=list)
    decided: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a request is settled (decided, expired or withdrawn)."""

    def ask(self, content: str) -> asyncio.Task[None]:
        message = InboundMessage(
            id="1300000000000000001", channel_id=CHANNEL, author_id=REQUESTER, author_name="ana", content=content
        )
        return asyncio.create_task(self.gateway.handle_message(message))

    async def card(self) -> str:
        await asyncio.wait_for(self.chat.card_posted.wait(), STEP_S)
        return self.chat.last_card()[1].request_id

    async def click(self, request_id: str, value: str) -> str:
        return await self.gateway.card_clicked(CardClick(request_id, value, REQUESTER, "ana"))


@pytest.fixture(params=["warm", "per-turn"])
async def demo(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Demo]:
    project = tmp_path / "webshop"
    project.mkdir()
    (project / "shop.py").write_text("")
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    warm = request.param == "warm"
    config = parse_config(
        {
            "defaults": {"claudeArgs": ["--permission-mode", "acceptEdits"], "worktrees": False, "warm": warm},
            "projects": {CHANNEL: {"name": "webshop", "directory": str(project), "agents": ["pm", "engineer"]}},
        }
    )
    clock = SystemClock()
    bus = EventBus()
    events: list[Event] = []
    decided = asyncio.Event()
    bus.listen(events.append)
    bus.listen(lambda event: decided.set() if isinstance(event, ApprovalDecided) else None)
    chat = InMemoryChat()
    broker = ApprovalBroker(
        bus=bus, clock=clock, key=b"demo-approvals-test-key-00000000", project=config.project, chat=lambda: chat
    )
    tool = ApprovalToolLaunch(socket_path(run_dir))
    runner = LiveRunner(DirectRunner(clock, kill_grace_s=0.5, approval_tool=tool), clock, kill_grace_s=0.5)
    manager = SessionManager(
        config=config,
        store=SessionStore(tmp_path / "sessions.json", clock=clock),
        runners={"direct": runner},
        bus=bus,
        clock=clock,
        worktrees=None,
        command=(str(install_shim(tmp_path / "bin")),),
        child_env={"CLAUDE_CONFIG_DIR": str(tmp_path / "claude"), "MPG_AGENT_MODE": "demo", "MPG_AGENT_PACE": "0"},
        approvals=broker,
    )
    gateway = Gateway(config=config, sessions=manager, bus=bus, clock=clock, chat=chat, approvals=broker)
    control = ControlService(gateway, EventJournal(gateway, redact=()), socket_file=socket_path(run_dir))
    await control.start()
    yield Demo(gateway, chat, manager, broker, runner, warm, events, decided)
    await control.stop()
    await manager.close()
    await broker.close()
    await runner.close()


async def test_the_engineer_asks_to_run_the_tests_and_allowing_it_produces_the_reply(demo: Demo) -> None:
    handled = demo.ask("@engineer run the tests")
    request_id = await demo.card()
    thread, card = demo.chat.last_card()
    assert TEST_COMMAND in card.text
    [pending] = demo.gateway.approvals()
    assert pending.summary == TEST_COMMAND and pending.tool == "Bash"
    [requested] = [e for e in demo.events if isinstance(e, ApprovalRequested)]
    assert requested.key == f"{thread}:engineer"
    # Warm: asked on the process's own pipes; per turn: through the permission tool.
    assert list(demo.runner.warm) == ([requested.key] if demo.warm else [])
    assert not handled.done()

    assert "Allowed once by ana" in await demo.click(request_id, "allow")
    await asyncio.wait_for(handled, STEP_S)
    reply = "\n".join(demo.chat.texts(thread))
    assert f"Ran the tests (`{TEST_COMMAND}`): 14 passed" in reply
    assert demo.gateway.approvals() == []


async def test_denying_the_test_run_is_said_in_the_reply(demo: Demo) -> None:
    handled = demo.ask("@engineer run the tests")
    request_id = await demo.card()
    thread = demo.chat.last_card()[0]
    assert "Denied by ana" in await demo.click(request_id, "deny")
    await asyncio.wait_for(handled, STEP_S)
    reply = "\n".join(demo.chat.texts(thread))
    assert "did not run the tests" in reply and "ana denied this" in reply


async def test_stopping_the_turn_withdraws_the_pending_request(demo: Demo) -> None:
    handled = demo.ask("@engineer run the tests")
    request_id = await demo.card()
    thread = demo.chat.last_card()[0]

    assert await demo.gateway.stop(f"{thread}:engineer")
    await asyncio.wait_for(handled, STEP_S)
    await asyncio.wait_for(demo.decided.wait(), STEP_S)

    [settled] = [e for e in demo.events if isinstance(e, ApprovalDecided)]
    assert settled.id == request_id and settled.reason == "withdrawn"
    assert demo.gateway.approvals() == []
    assert any(text.startswith("⏹️ Stopped") for text in demo.chat.texts(thread))
