"""The control protocol's payloads: one versioned JSON shape for both doors (socket and HTTP).

Everything a running gateway tells a cockpit is built here from
:class:`~mpg_tui.core.api.CoreAPI` snapshots, and read back here into the same types, so
a cockpit attached over the control API sees the very dataclasses an in-process one does.

Documents (``v`` is :data:`PROTOCOL_VERSION`; a client refuses another major version):

``snapshot``  ``{"v", "instance", "seq", "gateway": {...}, "projects", "sessions", "chains", "totals",
              "budgets", "approvals", "messages"}`` (``approvals``: requests waiting for a person, kept
              current by ``approval_*`` events; ``messages``: per-thread counts from the journal)
``stream``    newline-delimited JSON, one of ``hello`` (``instance``, ``seq``), ``event`` (``seq``,
              ``event``, and the state it left: ``session`` when the event names a session,
              ``chain`` when it names a thread, ``totals`` when it changes them, ``budgets``
              when it changes spend or a pause), ``resync``
              (fetch a fresh snapshot) and ``ping``.
``command``   request ``{"v", "args": {...}}``; reply ``{"v", "ok": true, "result"}`` or
              ``{"v", "ok": false, "error": {"code", "message"}}``.

Only fields picked here ever cross: config objects carry secrets and are never dumped.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, Literal

from mpg_tui.config import Agent, Defaults, Project, ProjectView
from mpg_tui.core import events as core_events
from mpg_tui.core.api import (
    ApprovalInfo,
    Budgets,
    ChainHop,
    CoreAPI,
    HandoffChain,
    PausedThread,
    ProjectSpend,
    SessionInfo,
    ThreadCounts,
    Totals,
)
from mpg_tui.core.events import ApprovalRequested, ConnectionState, Event
from mpg_tui.core.holds import HandBack, HoldGrant
from mpg_tui.core.plain import plain_dict

PROTOCOL_VERSION = 1
API_PREFIX = f"/control/v{PROTOCOL_VERSION}"
MAX_REQUEST_BYTES = 64 * 1024
"""A command request larger than this is refused (413) before it is parsed."""
MAX_LINE_BYTES = 4 * 1024 * 1024
"""The longest stream line a client accepts (a session's last reply is the bulk of one)."""

JSON = dict[str, Any]
ErrorCode = Literal["bad_request", "unknown_command", "too_large", "unauthorized", "forbidden", "failed", "unavailable"]


class ProtocolError(Exception):
    """A payload that does not have the shape this version of the protocol gives it."""


class ControlError(Exception):
    """A request the gateway refused, or a command that failed; ``code`` says which."""

    def __init__(self, code: ErrorCode | str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def to_json(self) -> JSON:
        return {"v": PROTOCOL_VERSION, "ok": False, "error": {"code": self.code, "message": self.message}}


def dumps(data: Any) -> str:
    # default=str: a field of an unexpected type must not kill a stream.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


# -- encoding --------------------------------------------------------------------------------


def session_json(info: SessionInfo) -> JSON:
    return plain_dict(info)


def chain_json(chain: HandoffChain) -> JSON:
    return plain_dict(chain)


def totals_json(totals: Totals) -> JSON:
    return plain_dict(totals)


def counts_json(counts: Mapping[str, ThreadCounts]) -> JSON:
    return {thread: plain_dict(c) for thread, c in counts.items()}


def read_counts(data: Any) -> dict[str, ThreadCounts]:
    """Per-thread message counts from a snapshot or a stream line (none from an older gateway)."""
    if not isinstance(data, dict):
        return {}
    return {str(t): _build(ThreadCounts, c, "message counts") for t, c in data.items()}


def budgets_json(budgets: Budgets) -> JSON:
    return plain_dict(budgets)


def project_json(project: ProjectView) -> JSON:
    return {
        "key": project.key,
        "name": project.name,
        "directory": project.directory,
        "agents": [{"name": a.name, "role": a.role} for a in project.agents.values()],
        "allowed_roles": list(project.allowed_roles),
        "rate_limit_per_user": project.rate_limit_per_user,
        "persistence": project.persistence,
        "worktrees": project.worktrees,
    }


def grant_json(grant: HoldGrant) -> JSON:
    data = plain_dict(grant)
    data["command"] = list(grant.command)
    return data


def hand_back_json(back: HandBack) -> JSON:
    return plain_dict(back)


def event_json(event: Event) -> JSON:
    return event.to_dict()


def snapshot_json(core: CoreAPI, *, instance: str, seq: int, pid: int) -> JSON:
    """The whole state a face needs, from one consistent set of reads."""
    return {
        "v": PROTOCOL_VERSION,
        "instance": instance,
        "seq": seq,
        "gateway": {
            "version": core.version,
            "started_at": core.started_at,
            "connection": core.connection_state,
            "pid": pid,
        },
        "projects": [project_json(p) for p in core.projects()],
        "sessions": [session_json(s) for s in core.sessions()],
        "chains": [chain_json(c) for c in core.chains()],
        "totals": totals_json(core.totals()),
        "budgets": budgets_json(core.budgets()),
        "messages": counts_json(core.message_counts()),
        "approvals": [plain_dict(a) for a in core.approvals()],
    }


# -- decoding --------------------------------------------------------------------------------


def _object(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ProtocolError(f"expected an object for {what}, got {type(data).__name__}")
    return data


def _build(cls: type[Any], data: Any, what: str) -> Any:
    """A dataclass from the fields of ``data`` it knows; fields added by a newer gateway are ignored."""
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    try:
        return cls(**{k: v for k, v in _object(data, what).items() if k in fields})
    except TypeError as exc:
        raise ProtocolError(f"{what}: {exc}") from None


def read_session(data: Any) -> SessionInfo:
    info: SessionInfo = _build(SessionInfo, data, "session")
    info.progress = list(info.progress or [])
    return info


def read_chain(data: Any) -> HandoffChain:
    chain: HandoffChain = _build(HandoffChain, data, "chain")
    chain.hops = [_build(ChainHop, hop, "chain hop") for hop in (chain.hops or [])]
    return chain


def read_grant(data: Any) -> HoldGrant:
    grant: HoldGrant = _build(HoldGrant, data, "hold")
    command = tuple(str(c) for c in grant.command or ())
    return dataclasses.replace(grant, command=command, env={str(k): str(v) for k, v in (grant.env or {}).items()})


def read_hand_back(data: Any) -> HandBack | None:
    if data is None:
        return None
    back: HandBack = _build(HandBack, data, "hand-back")
    return back


def read_approval(data: Any) -> ApprovalInfo:
    info: ApprovalInfo = _build(ApprovalInfo, data, "approval")
    info.options = [str(o) for o in (info.options or [])]
    return info


def approval_from_event(event: ApprovalRequested) -> ApprovalInfo:
    """The pending request an ``approval_requested`` event announces."""
    return ApprovalInfo(
        id=event.id,
        key=event.key,
        project_key=event.project_key,
        thread_id=event.thread_id,
        kind=event.request_kind,
        tool=event.tool,
        summary=event.summary,
        requested_by=event.requested_by,
        created_at=event.at,
        expires_at=event.expires_at,
        options=list(event.options),
    )


def read_totals(data: Any) -> Totals:
    totals: Totals = _build(Totals, data, "totals")
    return totals


def read_budgets(data: Any) -> Budgets:
    """Budgets from a snapshot or a stream line; a gateway too old to send them has none."""
    if data is None:
        return Budgets()
    body = _object(data, "budgets")
    return Budgets(
        projects=[_build(ProjectSpend, p, "project spend") for p in body.get("projects") or []],
        paused=[_build(PausedThread, p, "paused thread") for p in body.get("paused") or []],
    )


def read_project(data: Any, *, key: str | None = None, name: str | None = None) -> ProjectView:
    """A project as the cockpit shows it; ``key`` and ``name`` relabel it (several gateways)."""
    body = _object(data, "project")
    try:
        project = Project(name=str(body["name"]), directory=str(body["directory"]))
        view = ProjectView(key or str(body["key"]), project, Defaults())
        view.name = name or str(body["name"])
        view.agents = {
            str(a["name"]): Agent(name=str(a["name"]), role=str(a["role"]), prompt="") for a in body.get("agents", [])
        }
        view.allowed_roles = [str(r) for r in body.get("allowed_roles", [])]
        view.rate_limit_per_user = body.get("rate_limit_per_user")
        view.persistence = "tmux" if body.get("persistence") == "tmux" else "direct"
        view.worktrees = bool(body.get("worktrees", True))
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"project: {exc}") from None
    return view


def _event_types() -> dict[str, type[Event]]:
    found: dict[str, type[Event]] = {}
    pending: list[type[Event]] = [Event]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__ == core_events.__name__ and cls is not Event:
            found[cls.kind] = cls
    return found


EVENT_TYPES = _event_types()
"""Core event classes by ``kind``: what a stream's events are read back into."""


def read_event(data: Any) -> Event | None:
    """The core event ``data`` encodes, or None for a kind this version does not know."""
    body = _object(data, "event")
    cls = EVENT_TYPES.get(str(body.get("kind")))
    if cls is None:
        return None
    event: Event = _build(cls, body, f"event {cls.kind}")
    return event


def read_connection(value: Any) -> ConnectionState:
    if value in ("connecting", "ready", "resuming", "disconnected"):
        state: ConnectionState = value
        return state
    return "disconnected"


def check_version(document: Mapping[str, Any]) -> None:
    version = document.get("v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"the gateway speaks control protocol v{version}; this cockpit speaks v{PROTOCOL_VERSION}")
