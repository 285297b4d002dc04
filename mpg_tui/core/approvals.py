"""The approvals broker: requests waiting for a person, who may settle them, and when they expire.

A run asks through the :class:`~mpg_tui.core.permissions.PermissionRelay` the broker made
for its turn (:meth:`ApprovalBroker.relay_for`), or, for runs whose pipes the gateway does
not hold, through the MCP permission tool and the control API with the relay's token
(:meth:`ApprovalBroker.ask_with_token`). Each request:

* gets a random ID, is posted in its thread as a card with buttons, published as
  :class:`~mpg_tui.core.events.ApprovalRequested` and written to the audit log;
* is settled once, by the member whose message started the turn, a member with one of the
  project's ``approverRoles``, or the operator (cockpit, dashboard), see
  :mod:`mpg_tui.core.approvers`; anyone else is told it is not theirs to decide;
* is denied when ``approvalTimeoutMs`` passes unanswered, with a note in the thread;
* holds the run's :class:`~mpg_tui.core.permissions.HumanWaits` while it waits, so the
  run's own timeout does not count that time.

"Allow for this session" is also remembered here, per session key until the session is
killed or restarted (the session manager calls :meth:`ApprovalBroker.forget_session`): runs
that start one claude process per turn would otherwise ask again on every turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mpg_tui.config import ProjectView
from mpg_tui.core import approval_tokens
from mpg_tui.core.api import ApprovalInfo
from mpg_tui.core.approval_cards import ALLOW, ALLOW_SESSION, DENY, card_for, parse_option, verdict_text
from mpg_tui.core.approval_tokens import RunGrant
from mpg_tui.core.approvers import OPERATOR, Decider, Member, Operator, may_decide
from mpg_tui.core.audit import AuditLog
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import Clock, TimerHandle
from mpg_tui.core.events import ApprovalDecided, ApprovalRequested, Event
from mpg_tui.core.permissions import HumanWaits, PermissionDecision, PermissionRelay, PermissionRequest
from mpg_tui.core.ports import ApprovalCard, ChatError, ChatPort

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 600.0
RECENT_KEPT = 200
"""Settled requests remembered, so a permission tool that asks again after losing its
connection gets the same answer instead of a second card."""
OPERATOR_NAME = "the operator"


@dataclass(eq=False)
class _Pending:
    id: str
    grant: RunGrant
    request: PermissionRequest
    card: ApprovalCard
    created_at: float
    expires_at: float
    approver_roles: tuple[str, ...]
    future: asyncio.Future[PermissionDecision]
    dedupe: tuple[str, str] | None = None
    message_id: str | None = None
    posted: asyncio.Event = field(default_factory=asyncio.Event)
    timer: TimerHandle | None = None
    answers: dict[str, str] = field(default_factory=dict)
    waiters: int = 0


@dataclass(frozen=True)
class DecideReply:
    """What happened to a click or a command, in words for the person who gave it."""

    ok: bool
    text: str


class ApprovalBroker:
    """See the module docstring."""

    def __init__(
        self,
        *,
        bus: EventBus,
        clock: Clock,
        key: bytes,
        project: Callable[[str], ProjectView | None],
        chat: Callable[[], ChatPort | None],
        audit: AuditLog | None = None,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._key = key
        self._project = project
        self._chat = chat
        self._audit = audit
        self._pending: dict[str, _Pending] = {}
        self._by_dedupe: dict[tuple[str, str], _Pending] = {}
        self._recent: OrderedDict[tuple[str, str], PermissionDecision] = OrderedDict()
        self._waits: dict[str, HumanWaits] = {}
        self._session_rules: dict[str, set[tuple[str, str | None]]] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- making relays ---------------------------------------------------------------------

    def relay_for(self, grant: RunGrant, project: ProjectView) -> PermissionRelay | None:
        """The relay for one turn, or None when the project denies instead (``approvals: deny``)."""
        if project.approvals != "relay":
            return None
        token = approval_tokens.sign(grant, self._key)
        waits = HumanWaits()
        self._waits[token] = waits

        async def ask(request: PermissionRequest) -> PermissionDecision:
            return await self.ask(grant, request, waits=waits)

        return PermissionRelay(ask=ask, token=token, timeout_s=_timeout_s(project), waits=waits)

    def relay_ended(self, relay: PermissionRelay) -> None:
        """The turn is over: its token no longer has a live run's waits behind it."""
        self._waits.pop(relay.token, None)

    # -- asking -----------------------------------------------------------------------------

    async def ask_with_token(self, token: str, request: PermissionRequest) -> PermissionDecision:
        """A request from the MCP permission tool. A tool that lost its connection asks again
        with the same token and tool-use ID: it joins the request already pending, or gets
        the answer already given. Raises :class:`~mpg_tui.core.approval_tokens.BadToken`."""
        grant = approval_tokens.verify(token, self._key)
        dedupe = (token, request.tool_use_id) if request.tool_use_id else None
        if dedupe is not None:
            if dedupe in self._recent:
                return self._recent[dedupe]
            pending = self._by_dedupe.get(dedupe)
            if pending is not None:
                return await self._wait(pending, self._waits.get(token))
        return await self.ask(grant, request, waits=self._waits.get(token), dedupe=dedupe)

    async def ask(
        self,
        grant: RunGrant,
        request: PermissionRequest,
        *,
        waits: HumanWaits | None = None,
        dedupe: tuple[str, str] | None = None,
    ) -> PermissionDecision:
        """Ask a person; returns once someone decided, the request expired or was withdrawn."""
        project = self._project(grant.project_key)
        if request.kind == "tool" and request.session_rule() in self._session_rules.get(grant.key, set()):
            decision = PermissionDecision("allow", decided_by="an earlier “allow for this session”")
            self._audit_line("decided", None, grant, request, decision, reason="session_rule", waited_ms=0)
            return decision
        timeout_s = _timeout_s(project)
        now = self._clock.now()
        request_id = secrets.token_urlsafe(12)
        pending = _Pending(
            id=request_id,
            grant=grant,
            request=request,
            card=card_for(request_id, request, grant.requester_name, timeout_s),
            created_at=now,
            expires_at=now + timeout_s,
            approver_roles=tuple(project.approver_roles) if project is not None else (),
            future=asyncio.get_running_loop().create_future(),
            dedupe=dedupe,
        )
        self._pending[request_id] = pending
        if dedupe is not None:
            self._by_dedupe[dedupe] = pending
        pending.timer = self._clock.call_later(timeout_s, lambda: self._expire(pending))
        self._publish(
            ApprovalRequested(
                id=request_id,
                key=grant.key,
                project_key=grant.project_key,
                thread_id=grant.thread_id,
                request_kind=request.kind,
                tool=request.tool_name,
                summary=request.summary,
                requested_by=grant.requester_name,
                expires_at=pending.expires_at,
                options=tuple(o.label for o in request.questions[0].options) if request.questions else (),
            )
        )
        self._audit_line("requested", pending, grant, request, None)
        self._in_background(self._post(pending))
        return await self._wait(pending, waits)

    async def _wait(self, pending: _Pending, waits: HumanWaits | None) -> PermissionDecision:
        pending.waiters += 1
        try:
            with waits.hold() if waits is not None else contextlib.nullcontext():
                return await asyncio.shield(pending.future)
        finally:
            pending.waiters -= 1
            if pending.waiters == 0 and not pending.future.done():
                # Whoever asked is gone (the run ended, the tool's connection dropped): nobody
                # would hear the answer. A tool that reconnects asks again.
                self._settle(pending, PermissionDecision("deny", "Withdrawn.", decided_by=""), reason="withdrawn")

    # -- deciding ----------------------------------------------------------------------------

    def pending(self) -> list[ApprovalInfo]:
        return [self._info(p) for p in sorted(self._pending.values(), key=lambda p: p.created_at)]

    def decide(self, request_id: str, choice: str, decider: Decider, name: str) -> DecideReply:
        """Settle a request from a button, a command or a key. ``choice`` is ``allow``,
        ``session``, ``deny`` or a question's option (``q<i>o<j>``)."""
        pending = self._pending.get(request_id)
        if pending is None:
            return DecideReply(False, "This request is no longer waiting for an answer.")
        if not may_decide(decider, requester_id=pending.grant.requester_id, approver_roles=pending.approver_roles):
            who = "the member who asked for this work"
            if pending.approver_roles:
                who += " or a member with the role " + ", ".join(sorted(pending.approver_roles))
            return DecideReply(False, f"Not yours to decide: only {who} can (or the operator).")
        request = pending.request
        if choice == DENY:
            message = {
                "question": "The user declined to answer.",
                "plan": "The plan was not approved: keep planning.",
            }.get(request.kind, f"{name} denied this.")
            decision = PermissionDecision("deny", message, decided_by=name)
        elif choice == ALLOW and request.kind != "question":
            decision = PermissionDecision("allow", decided_by=name)
        elif choice == ALLOW_SESSION and request.kind == "tool":
            decision = PermissionDecision("allow_session", decided_by=name)
        elif (picked := parse_option(choice)) is not None and request.kind == "question":
            qi, oi = picked
            if qi >= len(request.questions) or oi >= len(request.questions[qi].options):
                return DecideReply(False, "No such option.")
            question = request.questions[qi]
            pending.answers[question.text] = question.options[oi].label
            if len(pending.answers) < len(request.questions):
                return DecideReply(True, f"Noted: {question.options[oi].label}. Answer the other questions too.")
            decision = PermissionDecision("allow", answers=dict(pending.answers), decided_by=name)
        else:
            return DecideReply(False, f"{choice!r} is not an answer to this request.")
        self._settle(pending, decision, reason="decided")
        return DecideReply(True, verdict_text(request, decision, "decided"))

    def decide_as_operator(self, request_id: str, choice: str) -> DecideReply:
        if choice.startswith("option:"):
            pending = self._pending.get(request_id)
            index = choice.removeprefix("option:")
            if pending is None or not index.isdigit():
                return DecideReply(False, "This request is no longer waiting for an answer.")
            first_open = next((i for i, q in enumerate(pending.request.questions) if q.text not in pending.answers), 0)
            choice = f"q{first_open}o{int(index)}"
        elif choice == "allow_session":
            choice = ALLOW_SESSION
        return self.decide(request_id, choice, OPERATOR, OPERATOR_NAME)

    def answer_in_thread(self, thread_id: str, member: Member, name: str, text: str) -> bool:
        """A reply in a thread with a pending question, from someone who may answer it: the
        answer to every open question. False when there is none (the message is a prompt)."""
        for pending in sorted(self._pending.values(), key=lambda p: p.created_at):
            if pending.grant.thread_id != thread_id or pending.request.kind != "question":
                continue
            if not may_decide(member, requester_id=pending.grant.requester_id, approver_roles=pending.approver_roles):
                return False
            answers = {q.text: pending.answers.get(q.text, text) for q in pending.request.questions}
            self._settle(pending, PermissionDecision("allow", answers=answers, decided_by=name), reason="decided")
            return True
        return False

    # -- settling ----------------------------------------------------------------------------

    def _expire(self, pending: _Pending) -> None:
        if pending.future.done():
            return
        minutes = max(1, round((pending.expires_at - pending.created_at) / 60))
        message = f"Nobody answered within {minutes} minutes, so this was denied."
        if pending.request.kind == "question":
            message = f"Nobody answered within {minutes} minutes; pick a sensible default and say so."
        self._settle(pending, PermissionDecision("deny", message, decided_by="timeout"), reason="timeout")
        self._in_background(self._note(pending.grant.thread_id, f"⏱️ {message}"))

    def _settle(self, pending: _Pending, decision: PermissionDecision, *, reason: str) -> None:
        if pending.future.done():
            return
        pending.future.set_result(decision)
        if pending.timer is not None:
            pending.timer.cancel()
        self._pending.pop(pending.id, None)
        if pending.dedupe is not None:
            self._by_dedupe.pop(pending.dedupe, None)
            if reason != "withdrawn":
                self._recent[pending.dedupe] = decision
                while len(self._recent) > RECENT_KEPT:
                    self._recent.popitem(last=False)
        if decision.outcome == "allow_session":
            self._session_rules.setdefault(pending.grant.key, set()).add(pending.request.session_rule())
        waited_ms = int(max(0.0, self._clock.now() - pending.created_at) * 1000)
        grant, request = pending.grant, pending.request
        self._publish(
            ApprovalDecided(
                id=pending.id,
                key=grant.key,
                project_key=grant.project_key,
                thread_id=grant.thread_id,
                request_kind=request.kind,
                tool=request.tool_name,
                outcome=decision.outcome,
                decided_by=decision.decided_by,
                waited_ms=waited_ms,
                reason=reason,  # type: ignore[arg-type]
            )
        )
        self._audit_line("decided", pending, grant, request, decision, reason=reason, waited_ms=waited_ms)
        self._in_background(self._close_card(pending, verdict_text(request, decision, reason)))

    # -- chat --------------------------------------------------------------------------------

    async def _post(self, pending: _Pending) -> None:
        chat = self._chat()
        try:
            if chat is not None:
                pending.message_id = await chat.post_card(pending.grant.thread_id, pending.card)
        except ChatError as exc:
            log.warning("could not post approval request %s in %s: %s", pending.id, pending.grant.thread_id, exc)
        finally:
            pending.posted.set()

    async def _close_card(self, pending: _Pending, verdict: str) -> None:
        await pending.posted.wait()
        chat = self._chat()
        if chat is None or pending.message_id is None:
            return
        try:
            await chat.close_card(pending.grant.thread_id, pending.message_id, pending.card, verdict)
        except ChatError as exc:
            log.warning("could not close approval request %s: %s", pending.id, exc)

    async def _note(self, thread_id: str, text: str) -> None:
        chat = self._chat()
        if chat is None:
            return
        try:
            await chat.send(thread_id, text)
        except ChatError as exc:
            log.warning("could not post an approval note in %s: %s", thread_id, exc)

    # -- the rest ----------------------------------------------------------------------------

    def forget_session(self, key: str) -> None:
        """Session ``key`` was killed or restarted: its "allow for this session" rules go."""
        self._session_rules.pop(key, None)

    def _info(self, pending: _Pending) -> ApprovalInfo:
        request = pending.request
        return ApprovalInfo(
            id=pending.id,
            key=pending.grant.key,
            project_key=pending.grant.project_key,
            thread_id=pending.grant.thread_id,
            kind=request.kind,
            tool=request.tool_name,
            summary=request.summary,
            requested_by=pending.grant.requester_name,
            created_at=pending.created_at,
            expires_at=pending.expires_at,
            options=[o.label for o in request.questions[0].options] if request.questions else [],
        )

    def _audit_line(
        self,
        what: str,
        pending: _Pending | None,
        grant: RunGrant,
        request: PermissionRequest,
        decision: PermissionDecision | None,
        *,
        reason: str | None = None,
        waited_ms: int | None = None,
    ) -> None:
        if self._audit is None:
            return
        entry: dict[str, Any] = {
            "at": self._clock.now(),
            "event": what,
            "id": pending.id if pending is not None else None,
            "key": grant.key,
            "project": grant.project_key,
            "thread": grant.thread_id,
            "requester": grant.requester_name or grant.requester_id,
            "kind": request.kind,
            "tool": request.tool_name,
            "summary": request.summary,
        }
        if decision is not None:
            entry |= {
                "outcome": decision.outcome,
                "decided_by": decision.decided_by,
                "reason": reason,
                "waited_ms": waited_ms,
            }
            if decision.answers:
                entry["answers"] = dict(decision.answers)
        self._audit.append(entry)

    def _publish(self, event: Event) -> None:
        self._bus.publish(dataclasses.replace(event, at=self._clock.now()))

    def _in_background(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Withdraw nothing (a tmux run's tool asks the next gateway); let chat work finish."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=2.0)


def _timeout_s(project: ProjectView | None) -> float:
    return project.approval_timeout_ms / 1000 if project is not None else DEFAULT_TIMEOUT_S


__all__ = ["ApprovalBroker", "DecideReply", "Operator"]
