"""Approvals relayed from the real claude CLI: through the MCP permission tool and the control
socket (one process a turn, tmux), and over a warm process's own pipes (``can_use_tool``).

The model (scripted by the loopback Messages API) asks for a Bash command outside the
allowlist (``python3 -c …`` reaches the prompt even in acceptEdits mode); the request appears
in the thread with buttons; another member's click is refused; the requester decides; the
Messages API sees what claude was told. The same allow path runs under tmux persistence
across a gateway restart while the request is pending, and on the live runner, where the
request reaches the broker as a control request and the process stays warm after the turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mpg_tui.config import GatewayConfig
from mpg_tui.control.journal import EventJournal
from mpg_tui.control.server import ControlService, socket_path
from mpg_tui.core.approval_tokens import load_or_create_key
from mpg_tui.core.approvals import ApprovalBroker
from mpg_tui.core.audit import AuditLog
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import Clock, FakeClock, SystemClock
from mpg_tui.core.events import Event
from mpg_tui.core.gateway import Gateway
from mpg_tui.core.ports import CardClick, InboundMessage
from mpg_tui.core.runner import Runner
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.store import SessionStore
from mpg_tui.runners.approval_tool import ApprovalToolLaunch
from mpg_tui.runners.direct import DirectRunner
from mpg_tui.runners.live import LiveRunner
from mpg_tui.runners.tmux import TmuxRunner
from mpg_tui.sandbox.inmemory import InMemoryChat
from tests.contract.conftest import CHANNEL, ClaudeWorld
from tests.contract.messages_api import Text, ToolUse

pytestmark = pytest.mark.contract

REQUESTER = "42"
OTHER = "77"
COMMAND = 'python3 -c "print(6*7)"'


@dataclass
class Stack:
    """One gateway: core, broker, control socket, on a runner of the real CLI."""

    gateway: Gateway
    chat: InMemoryChat
    manager: SessionManager
    control: ControlService
    broker: ApprovalBroker
    runner: Runner
    audit: AuditLog
    events: list[Event] = field(default_factory=list)

    async def close(self) -> None:
        await self.control.stop()
        await self.manager.close()
        await self.broker.close()

    async def card(self) -> str:
        await asyncio.wait_for(self.chat.card_posted.wait(), 60)
        self.chat.card_posted.clear()
        return self.chat.last_card()[1].request_id

    async def click(self, request_id: str, value: str, member: str) -> str:
        name = "ana" if member == REQUESTER else "bo"
        return await self.gateway.card_clicked(CardClick(request_id, value, member, name))


MakeStack = Callable[..., Stack]


@pytest.fixture
async def make_stack(world: ClaudeWorld, tmp_path: Path, tmux_socket: str) -> AsyncIterator[MakeStack]:
    made: list[Stack] = []
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)

    def make(kind: str = "direct", *, broker_clock: Clock | None = None, **project: Any) -> Stack:
        clock = SystemClock()
        persistence = "tmux" if kind == "tmux" else "direct"
        config: GatewayConfig = world.config(persistence=persistence, worktrees=False, warm=kind == "live", **project)
        bus = EventBus()
        events: list[Event] = []
        bus.listen(events.append)
        chat = InMemoryChat()
        audit = AuditLog(tmp_path / "approvals-audit.jsonl")
        broker = ApprovalBroker(
            bus=bus,
            clock=broker_clock or clock,
            key=load_or_create_key(run_dir / "approvals.key"),
            project=config.project,
            chat=lambda: chat,
            audit=audit,
        )
        tool = ApprovalToolLaunch(socket_path(run_dir))
        runner: Runner
        if kind == "direct":
            runner = DirectRunner(clock, kill_grace_s=0.5, approval_tool=tool)
        elif kind == "live":
            runner = LiveRunner(DirectRunner(clock, kill_grace_s=0.5, approval_tool=tool), clock, kill_grace_s=0.5)
        else:
            runner = TmuxRunner(
                tmux_socket, run_dir / "tmux", clock=clock, kill_grace_s=0.5, poll_interval_s=0.05, approval_tool=tool
            )
        manager = SessionManager(
            config=config,
            store=SessionStore(tmp_path / "sessions.json", clock=clock),
            runners={runner.kind: runner},
            bus=bus,
            clock=clock,
            worktrees=None,
            command=(str(world.executable),),
            child_env=world.env,
            approvals=broker,
        )
        gateway = Gateway(config=config, sessions=manager, bus=bus, clock=clock, chat=chat, approvals=broker)
        control = ControlService(gateway, EventJournal(gateway, redact=()), socket_file=socket_path(run_dir))
        stack = Stack(gateway, chat, manager, control, broker, runner, audit, events)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        await stack.close()
        await stack.runner.close()


def ask(content: str = "run the tests") -> InboundMessage:
    return InboundMessage(id="1001", channel_id=CHANNEL, author_id=REQUESTER, author_name="ana", content=content)


async def test_the_requester_allows_a_command_another_members_click_is_refused(
    world: ClaudeWorld, make_stack: MakeStack
) -> None:
    stack = make_stack()
    await stack.control.start()
    world.api.script(ToolUse("Bash", {"command": COMMAND, "description": "the tests"}), Text("The tests printed 42."))

    handled = asyncio.create_task(stack.gateway.handle_message(ask()))
    request_id = await stack.card()
    thread, card = stack.chat.last_card()
    assert COMMAND in card.text and [c.label for c in card.choices] == ["Allow once", "Allow for this session", "Deny"]
    assert [a.summary for a in stack.gateway.approvals()] == [COMMAND]

    assert (await stack.click(request_id, "allow", OTHER)).startswith("Not yours to decide")
    assert not handled.done()
    assert "Allowed once by ana" in await stack.click(request_id, "allow", REQUESTER)
    await asyncio.wait_for(handled, 60)

    [tool_result] = world.api.requests[-1].tool_results()
    assert "42" in str(tool_result["content"]) and not tool_result.get("is_error")
    assert stack.chat.texts(thread)[-1] == "The tests printed 42."
    assert stack.chat.cards[request_id][1] == "✅ Allowed once by ana."
    assert [(e["event"], e.get("outcome")) for e in stack.audit.read()] == [("requested", None), ("decided", "allow")]
    assert stack.gateway.approvals() == []


async def test_a_denied_command_is_not_run_and_claude_is_told(world: ClaudeWorld, make_stack: MakeStack) -> None:
    stack = make_stack()
    await stack.control.start()
    world.api.script(ToolUse("Bash", {"command": COMMAND}), Text("I was not allowed to run the tests."))

    handled = asyncio.create_task(stack.gateway.handle_message(ask()))
    request_id = await stack.card()
    assert "Denied by ana" in await stack.click(request_id, "deny", REQUESTER)
    await asyncio.wait_for(handled, 60)

    [tool_result] = world.api.requests[-1].tool_results()
    assert tool_result.get("is_error") and "ana denied this" in str(tool_result["content"])
    assert stack.chat.texts(stack.chat.last_card()[0])[-1] == "I was not allowed to run the tests."


async def test_an_unanswered_request_is_denied_at_the_approval_timeout(
    world: ClaudeWorld, make_stack: MakeStack
) -> None:
    clock = FakeClock()
    stack = make_stack(broker_clock=clock, approvalTimeoutMs=120_000)  # 2 minutes, on the fake clock
    await stack.control.start()
    world.api.script(ToolUse("Bash", {"command": COMMAND}), Text("Nobody answered, so I stopped."))

    handled = asyncio.create_task(stack.gateway.handle_message(ask()))
    request_id = await stack.card()
    clock.advance(120)
    await asyncio.wait_for(handled, 60)

    [tool_result] = world.api.requests[-1].tool_results()
    assert "Nobody answered within 2 minutes" in str(tool_result["content"])
    texts = stack.chat.texts(stack.chat.last_card()[0])
    assert any(text.startswith("⏱️ Nobody answered") for text in texts)
    assert "Nobody answered" in stack.chat.cards[request_id][1]


async def test_the_chosen_option_of_a_question_reaches_the_model(world: ClaudeWorld, make_stack: MakeStack) -> None:
    stack = make_stack()
    await stack.control.start()
    question = {
        "question": "Which database should the service use?",
        "header": "Database",
        "options": [
            {"label": "Postgres", "description": "Relational, the default"},
            {"label": "SQLite", "description": "A file, no server"},
        ],
        "multiSelect": False,
    }
    world.api.script(ToolUse("AskUserQuestion", {"questions": [question]}), Text("SQLite it is."))

    handled = asyncio.create_task(stack.gateway.handle_message(ask("set up the database")))
    request_id = await stack.card()
    assert [c.label for c in stack.chat.last_card()[1].choices] == ["Postgres", "SQLite", "Decline"]
    assert "Answered by ana: SQLite" in await stack.click(request_id, "q0o1", REQUESTER)
    await asyncio.wait_for(handled, 60)

    [tool_result] = world.api.requests[-1].tool_results()
    assert '"Which database should the service use?"="SQLite"' in str(tool_result["content"])


async def test_under_tmux_a_pending_request_is_asked_again_by_the_restarted_gateway(
    world: ClaudeWorld, make_stack: MakeStack
) -> None:
    first = make_stack("tmux")
    await first.control.start()
    world.api.script(ToolUse("Bash", {"command": COMMAND}), Text("Ran them after the restart: 42."))

    handled = asyncio.create_task(first.gateway.handle_message(ask()))
    old_request = await first.card()
    thread = first.chat.last_card()[0]
    key = first.gateway.sessions()[0].key
    # The gateway shuts down while the request is pending; the run goes on in tmux.
    await first.control.stop()
    await first.manager.close()
    await asyncio.wait_for(handled, 60)
    await first.broker.close()
    assert first.chat.cards[old_request][1].startswith("↩️ Withdrawn")

    second = make_stack("tmux")
    assert isinstance(second.runner, TmuxRunner)
    [recovered] = await second.runner.recover({key: None})
    await second.control.start()
    new_request = await second.card()  # the permission tool asked again
    assert new_request != old_request and COMMAND in second.chat.last_card()[1].text
    assert "Allowed once by ana" in await second.click(new_request, "allow", REQUESTER)

    result = await asyncio.wait_for(recovered.wait(lambda progress: None), 60)
    assert result.ok and result.text == "Ran them after the restart: 42."
    [tool_result] = world.api.requests[-1].tool_results()
    assert "42" in str(tool_result["content"])
    assert thread == second.chat.last_card()[0]


async def test_on_a_warm_process_the_request_comes_over_its_pipes_and_allowing_runs_the_command(
    world: ClaudeWorld, make_stack: MakeStack
) -> None:
    stack = make_stack("live")  # no control socket: the only way to ask is claude's own stdout
    assert isinstance(stack.runner, LiveRunner)
    world.api.script(
        ToolUse("Bash", {"command": COMMAND, "description": "the tests"}),
        Text("The tests printed 42."),
        Text("Still here."),
    )

    handled = asyncio.create_task(stack.gateway.handle_message(ask()))
    request_id = await stack.card()
    thread, card = stack.chat.last_card()
    assert COMMAND in card.text
    [pending] = stack.gateway.approvals()
    key = stack.gateway.sessions()[0].key
    assert pending.summary == COMMAND and list(stack.runner.warm) == [key]
    pid = stack.runner.warm[key]

    assert (await stack.click(request_id, "allow", OTHER)).startswith("Not yours to decide")
    assert "Allowed once by ana" in await stack.click(request_id, "allow", REQUESTER)
    await asyncio.wait_for(handled, 60)

    [tool_result] = world.api.requests[-1].tool_results()
    assert "42" in str(tool_result["content"]) and not tool_result.get("is_error")
    assert stack.chat.texts(thread)[-1] == "The tests printed 42."
    assert stack.chat.cards[request_id][1] == "✅ Allowed once by ana."
    assert stack.runner.warm == {key: pid}, "the process stays warm after the turn"

    follow_up = InboundMessage(
        id="1002", channel_id=thread, author_id=REQUESTER, author_name="ana", content="ok?", parent_channel_id=CHANNEL
    )
    await asyncio.wait_for(stack.gateway.handle_message(follow_up), 60)
    assert stack.chat.texts(thread)[-1] == "Still here."
    assert stack.runner.warm == {key: pid}


async def test_on_a_warm_process_a_denied_command_is_not_run_and_claude_is_told(
    world: ClaudeWorld, make_stack: MakeStack
) -> None:
    stack = make_stack("live")
    world.api.script(ToolUse("Bash", {"command": COMMAND}), Text("I was not allowed to run the tests."))

    handled = asyncio.create_task(stack.gateway.handle_message(ask()))
    request_id = await stack.card()
    assert "Denied by ana" in await stack.click(request_id, "deny", REQUESTER)
    await asyncio.wait_for(handled, 60)

    [tool_result] = world.api.requests[-1].tool_results()
    assert tool_result.get("is_error") and "ana denied this" in str(tool_result["content"])
    assert stack.chat.texts(stack.chat.last_card()[0])[-1] == "I was not allowed to run the tests."
