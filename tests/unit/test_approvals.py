"""The approvals broker: who may decide, decided once, expiry, session rules, audit, paused deadlines."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from mpg_tui.config import parse_config
from mpg_tui.core import approval_tokens
from mpg_tui.core.approval_tokens import BadToken, RunGrant
from mpg_tui.core.approvals import ApprovalBroker
from mpg_tui.core.approvers import Member
from mpg_tui.core.audit import AuditLog
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.deadline import RunDeadline
from mpg_tui.core.events import ApprovalDecided, ApprovalRequested, Event
from mpg_tui.core.permissions import HumanWaits, PermissionDecision, PermissionRequest
from mpg_tui.core.ports import ApprovalCard, Embed, HistoryMessage
from mpg_tui.sandbox.inmemory import InMemoryChat

CHANNEL = "123456789012345678"
THREAD = "223456789012345678"
KEY = b"k" * 32


class CardChat(InMemoryChat):
    """The sandbox's in-memory chat, keeping the cards, their verdicts and the notes it was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.card_list: list[ApprovalCard] = []
        self.verdicts: dict[str, str] = {}
        self.notes: list[str] = []
        self.card_posted = asyncio.Event()
        self.closed = asyncio.Event()

    async def send(self, channel_id: str, content: str | None = None, embed: Embed | None = None) -> str:
        self.notes.append(content or "")
        return await super().send(channel_id, content, embed)

    async def history(self, channel_id: str, limit: int, before: str | None = None) -> list[HistoryMessage]:
        return []

    async def post_card(self, channel_id: str, card: ApprovalCard) -> str:
        self.card_list.append(card)
        self.card_posted.set()
        return await super().post_card(channel_id, card)

    async def close_card(self, channel_id: str, message_id: str, card: ApprovalCard, verdict: str) -> None:
        self.verdicts[card.request_id] = verdict
        self.closed.set()
        await super().close_card(channel_id, message_id, card, verdict)


class World:
    def __init__(self, tmp_path: Path, defaults: dict[str, object] | None = None, **project: object) -> None:
        self.config = parse_config(
            {"defaults": defaults or {}, "projects": {CHANNEL: {"directory": str(tmp_path), **project}}}
        )
        self.clock = FakeClock()
        self.bus = EventBus(self.clock)
        self.events: list[Event] = []
        self.bus.listen(self.events.append)
        self.chat = CardChat()
        self.audit = AuditLog(tmp_path / "audit.jsonl")
        self.broker = ApprovalBroker(
            bus=self.bus,
            clock=self.clock,
            key=KEY,
            project=self.config.project,
            chat=lambda: self.chat,
            audit=self.audit,
        )
        self.grant = RunGrant(THREAD, CHANNEL, THREAD, requester_id="42", requester_name="ana")

    async def ask(self, request: PermissionRequest) -> tuple[asyncio.Task[PermissionDecision], str]:
        view = self.config.project(CHANNEL)
        assert view is not None
        relay = self.broker.relay_for(self.grant, view)
        assert relay is not None
        task = asyncio.create_task(relay.ask(request))
        await self.chat.card_posted.wait()
        self.chat.card_posted.clear()
        return task, self.chat.card_list[-1].request_id


def bash(command: str, tool_use_id: str = "toolu_1") -> PermissionRequest:
    return PermissionRequest.from_tool_call("Bash", {"command": command, "description": "d"}, tool_use_id)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path, approverRoles=["lead"])


async def test_only_the_requester_an_approver_role_or_the_operator_may_decide_and_only_once(world: World) -> None:
    task, request_id = await world.ask(bash("rm -rf build"))
    card = world.chat.card_list[-1]
    assert "rm -rf build" in card.text and [c.label for c in card.choices] == [
        "Allow once",
        "Allow for this session",
        "Deny",
    ]

    refused = world.broker.decide(request_id, "allow", Member("7"), "bo")
    assert not refused.ok and refused.text.startswith("Not yours to decide")
    assert not task.done()

    allowed = world.broker.decide(request_id, "allow", Member("42"), "ana")
    decision = await task
    assert allowed.ok and decision.outcome == "allow" and decision.decided_by == "ana"
    assert decision.cli_response(bash("rm -rf build")) == {
        "behavior": "allow",
        "updatedInput": {"command": "rm -rf build", "description": "d"},
    }
    again = world.broker.decide(request_id, "deny", Member("42"), "ana")
    assert not again.ok and "no longer waiting" in again.text
    await world.chat.closed.wait()
    assert world.chat.verdicts[request_id] == "✅ Allowed once by ana."

    task2, second = await world.ask(bash("python3 -c 1", "toolu_2"))
    assert world.broker.decide(second, "deny", Member("8", role_names=("lead",)), "cy").ok
    assert (await task2).outcome == "deny"
    assert [type(e) for e in world.events if isinstance(e, ApprovalRequested | ApprovalDecided)] == [
        ApprovalRequested,
        ApprovalDecided,
        ApprovalRequested,
        ApprovalDecided,
    ]
    audit = world.audit.read()
    assert [(e["event"], e.get("outcome"), e.get("decided_by")) for e in audit] == [
        ("requested", None, None),
        ("decided", "allow", "ana"),
        ("requested", None, None),
        ("decided", "deny", "cy"),
    ]
    assert audit[0]["summary"] == "rm -rf build" and audit[0]["requester"] == "ana"


async def test_an_unanswered_request_is_denied_at_the_timeout_with_a_note_in_the_thread(tmp_path: Path) -> None:
    world = World(tmp_path, {"approvalTimeoutMs": 60_000})
    task, request_id = await world.ask(bash("curl -s http://127.0.0.1:9/"))
    world.clock.advance(59)
    await asyncio.sleep(0)
    assert not task.done()
    world.clock.advance(1)
    decision = await task
    assert decision.outcome == "deny" and "within 1 minutes" in decision.message
    await world.chat.closed.wait()
    assert "Nobody answered" in world.chat.verdicts[request_id]
    assert any("Nobody answered" in note for note in world.chat.notes)
    decided = [e for e in world.events if isinstance(e, ApprovalDecided)]
    assert decided[0].reason == "timeout" and decided[0].waited_ms == 60_000


async def test_allow_for_this_session_is_remembered_until_the_session_restarts(world: World) -> None:
    task, request_id = await world.ask(bash("python3 -c 1"))
    world.broker.decide(request_id, "session", Member("42"), "ana")
    decision = await task
    assert decision.cli_response(bash("python3 -c 1"))["updatedPermissions"] == [
        {
            "type": "addRules",
            "rules": [{"toolName": "Bash", "ruleContent": "python3 -c 1"}],
            "behavior": "allow",
            "destination": "session",
        }
    ]
    view = world.config.project(CHANNEL)
    assert view is not None
    relay = world.broker.relay_for(world.grant, view)
    assert relay is not None
    assert (await relay.ask(bash("python3 -c 1", "toolu_9"))).outcome == "allow"  # no card this time
    assert len(world.chat.card_list) == 1

    world.broker.forget_session(THREAD)  # what the session manager does on restart and kill
    task, _ = await world.ask(bash("python3 -c 1", "toolu_10"))
    assert len(world.chat.card_list) == 2
    task.cancel()


def test_the_session_rule_copies_only_the_clis_addrules_suggestion_as_a_session_rule() -> None:
    suggestions = (
        {"type": "addRules", "rules": [{"toolName": "Bash", "ruleContent": "rm -rf build"}], "destination": "x"},
        {"type": "setMode", "mode": "acceptEdits", "destination": "session"},
    )
    request = PermissionRequest.from_tool_call("Bash", {"command": "rm -rf build"}, "t", suggestions)
    response = PermissionDecision("allow_session").cli_response(request)
    assert response["updatedPermissions"] == [
        {
            "type": "addRules",
            "rules": [{"toolName": "Bash", "ruleContent": "rm -rf build"}],
            "behavior": "allow",
            "destination": "session",
        }
    ]


async def test_a_question_is_answered_by_a_button_or_by_a_reply_in_the_thread(world: World) -> None:
    question = {
        "questions": [
            {
                "question": "Which database?",
                "header": "DB",
                "options": [{"label": "Postgres", "description": "server"}, {"label": "SQLite", "description": "file"}],
                "multiSelect": False,
            }
        ]
    }
    task, request_id = await world.ask(PermissionRequest.from_tool_call("AskUserQuestion", question, "q1"))
    assert [c.label for c in world.chat.card_list[-1].choices] == ["Postgres", "SQLite", "Decline"]
    world.broker.decide(request_id, "q0o1", Member("42"), "ana")
    decision = await task
    assert decision.cli_response(PermissionRequest.from_tool_call("AskUserQuestion", question))["updatedInput"][
        "answers"
    ] == {"Which database?": "SQLite"}

    task, _ = await world.ask(PermissionRequest.from_tool_call("AskUserQuestion", question, "q2"))
    assert not world.broker.answer_in_thread(THREAD, Member("7"), "bo", "MariaDB")
    assert world.broker.answer_in_thread(THREAD, Member("42"), "ana", "MariaDB")
    assert (await task).answers == {"Which database?": "MariaDB"}


async def test_a_permission_tool_that_asks_again_joins_the_pending_request(world: World) -> None:
    view = world.config.project(CHANNEL)
    assert view is not None
    relay = world.broker.relay_for(world.grant, view)
    assert relay is not None
    first = asyncio.create_task(world.broker.ask_with_token(relay.token, bash("python3 -c 1", "toolu_7")))
    await world.chat.card_posted.wait()
    second = asyncio.create_task(world.broker.ask_with_token(relay.token, bash("python3 -c 1", "toolu_7")))
    await asyncio.sleep(0)
    first.cancel()  # the tool's first connection dropped: the request stays for the second
    with contextlib.suppress(asyncio.CancelledError):
        await first
    [pending] = world.broker.pending()
    world.broker.decide_as_operator(pending.id, "allow")
    assert (await second).decided_by == "the operator"
    assert len(world.chat.card_list) == 1
    again = await world.broker.ask_with_token(relay.token, bash("python3 -c 1", "toolu_7"))
    assert again.outcome == "allow"  # already decided: the same answer, no new card


def test_a_forged_or_damaged_token_is_refused() -> None:
    grant = RunGrant(key="k", project_key="p", thread_id="t", requester_id="42", requester_name="ana")
    token = approval_tokens.sign(grant, KEY)
    assert approval_tokens.verify(token, KEY) == grant
    with pytest.raises(BadToken):
        approval_tokens.verify(token, b"x" * 32)
    body, _, mac = token.partition(".")
    with pytest.raises(BadToken):
        approval_tokens.verify(body[:-2] + "AA." + mac, KEY)


def test_a_runs_deadline_stops_while_it_waits_for_a_person() -> None:
    clock, waits, fired = FakeClock(), HumanWaits(), []
    RunDeadline(clock, 100, lambda: fired.append(clock.monotonic()), waits)
    clock.advance(60)
    with waits.hold():
        clock.advance(500)
    assert fired == []
    clock.advance(39)
    assert fired == []
    clock.advance(1)
    assert fired == [600]


def test_approvals_are_relayed_by_default_and_denied_where_configured(tmp_path: Path) -> None:
    config = parse_config(
        {
            "defaults": {"approverRoles": ["lead"]},
            "projects": {
                CHANNEL: {"directory": str(tmp_path)},
                "323456789012345678": {"directory": str(tmp_path), "approvals": "deny", "approverRoles": []},
            },
        }
    )
    relayed, denied = config.views()
    assert (relayed.approvals, relayed.approver_roles) == ("relay", ["lead"])
    assert (denied.approvals, denied.approver_roles) == ("deny", [])
    assert config.defaults.approval_timeout_ms == 600_000
    assert config.needs_members_intent
