"""The dashboard's JSON documents, built from :class:`~mpg_tui.core.api.CoreAPI` snapshots.

Field names follow MPG v0.6.0's dashboard API (camelCase; ``/health`` has ``status``,
``uptime``, ``sessions.active``/``sessions.queued`` and ``discord``; a session has
``sessionId``, ``projectKey``, ``cwd``, ``lastActivity`` in epoch milliseconds,
``queueLength`` and ``processing``; a project has ``channelId``, ``name``, ``directory``
and ``agents`` as a list of names) so existing consumers keep working. Everything else
is added alongside, never renamed.

Only fields picked here are ever served: configuration objects carry secrets (the
dashboard token among them) and are never dumped wholesale.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from mpg_tui.config import ProjectView
from mpg_tui.core.api import (
    ApprovalInfo,
    Budgets,
    ChainHop,
    ConversationEntry,
    CoreAPI,
    HandoffChain,
    JournalEntry,
    SessionInfo,
    ThreadCounts,
    Totals,
)
from mpg_tui.core.clock import Clock
from mpg_tui.core.events import ConnectionState, Event

JSON = dict[str, Any]

DISCORD_STATUS: Mapping[ConnectionState, str] = {
    "ready": "connected",
    "connecting": "connecting",
    "resuming": "reconnecting",
    "disconnected": "disconnected",
}
"""The words MPG's ``/health`` used for the Discord connection, by core state."""

PREVIEW_CHARS = 280
PROGRESS_LINES = 5


def iso(epoch_s: float | None) -> str | None:
    """An ISO 8601 UTC timestamp with milliseconds, or None."""
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def project_names(projects: Iterable[ProjectView]) -> dict[str, str]:
    return {p.key: p.name for p in projects}


def session_json(info: SessionInfo, names: Mapping[str, str]) -> JSON:
    return {
        # MPG called the session key "projectKey" (it is the thread id, or "thread:agent").
        "projectKey": info.key,
        "key": info.key,
        "sessionId": info.session_id,
        "projectChannelId": info.project_key,
        "projectName": names.get(info.project_key, info.project_key),
        "threadId": info.thread_id,
        "threadName": info.thread_name,
        "agent": info.agent,
        "cwd": info.cwd,
        "worktreePath": info.worktree_path,
        "state": info.state,
        "processing": info.state in ("running", "recovering"),
        "queueLength": info.queue_depth,
        "runner": info.runner,
        "tmuxSession": info.tmux_session,
        "attachCommand": info.attach_command,
        "lastActivity": round(info.last_activity * 1000),
        "lastActivityAt": iso(info.last_activity),
        "runStartedAt": iso(info.run_started_at),
        "runs": info.runs,
        "costUsd": info.cost_usd,
        "inputTokens": info.input_tokens,
        "outputTokens": info.output_tokens,
        "heldSince": iso(info.held_since),
        "heldBy": info.held_by,
        "lastReply": _preview(info.last_reply),
        "lastError": info.last_error,
        "progress": list(info.progress[-PROGRESS_LINES:]),
    }


def sessions_json(sessions: Sequence[SessionInfo], names: Mapping[str, str]) -> list[JSON]:
    """Every session, most recently active first."""
    ordered = sorted(sessions, key=lambda s: s.last_activity, reverse=True)
    return [session_json(s, names) for s in ordered]


def messages_json(entries: Sequence[JournalEntry], counts: Mapping[str, ThreadCounts]) -> JSON:
    """``/api/messages``: per-thread counts and the newest journal entries."""
    return {
        "threads": {thread_id: dataclasses.asdict(c) for thread_id, c in counts.items()},
        "messages": [
            {
                "messageId": e.message_id,
                "channelId": e.channel_id,
                "projectChannelId": e.project_key,
                "threadId": e.thread_id,
                "sessionKey": e.session_key,
                "state": e.state,
                "author": e.author,
                "preview": e.preview,
                "receivedAt": iso(e.received_at),
                "updatedAt": iso(e.updated_at),
            }
            for e in entries
        ],
    }


def project_json(project: ProjectView) -> JSON:
    return {
        "channelId": project.channel_id,
        "name": project.name,
        "directory": project.directory,
        "agents": list(project.agents),
        "agentDetails": [{"name": a.name, "role": a.role} for a in project.agents.values()],
        "allowedRoles": list(project.allowed_roles),
        "rateLimitPerUser": project.rate_limit_per_user,
        "persistence": project.persistence,
        "worktrees": project.worktrees,
    }


def hop_json(hop: ChainHop) -> JSON:
    return {
        "agent": hop.agent,
        "state": hop.state,
        "startedAt": iso(hop.started_at),
        "durationMs": hop.duration_ms,
        "costUsd": hop.cost_usd,
    }


def chain_json(chain: HandoffChain, names: Mapping[str, str]) -> JSON:
    return {
        "threadId": chain.thread_id,
        "projectKey": chain.project_key,
        "projectName": names.get(chain.project_key, chain.project_key),
        "state": chain.state,
        "turns": chain.turns,
        "maxTurns": chain.max_turns,
        "costUsd": sum(h.cost_usd for h in chain.hops),
        "durationMs": sum(h.duration_ms for h in chain.hops),
        "hops": [hop_json(h) for h in chain.hops],
    }


def conversation_json(thread_id: str, entries: Sequence[ConversationEntry]) -> JSON:
    """A thread's conversation as the gateway saw and sent it, oldest first."""
    return {
        "threadId": thread_id,
        "entries": [{"at": e.at, "time": iso(e.at), "kind": e.kind, "who": e.who, "text": e.text} for e in entries],
    }


def totals_json(totals: Totals) -> JSON:
    return {
        "runs": totals.runs,
        "failures": totals.failures,
        "costUsd": totals.cost_usd,
        "inputTokens": totals.input_tokens,
        "outputTokens": totals.output_tokens,
    }


def health_json(core: CoreAPI, clock: Clock, sessions: Sequence[SessionInfo] | None = None) -> JSON:
    sessions = core.sessions() if sessions is None else sessions
    state = core.connection_state
    return {
        "status": "ok",
        "uptime": max(0, int(clock.now() - core.started_at)),
        "sessions": {
            "active": len(sessions),
            "queued": sum(s.queue_depth for s in sessions),
            "running": sum(1 for s in sessions if s.state in ("running", "recovering")),
        },
        "discord": DISCORD_STATUS.get(state, state),
        "connection": state,
    }


def status_json(core: CoreAPI, clock: Clock, recent: Sequence[Event] = ()) -> JSON:
    """Everything the page shows, from one consistent set of snapshots."""
    sessions = core.sessions()
    projects = core.projects()
    names = project_names(projects)
    return {
        "version": core.version,
        "serverTime": clock.now(),
        "startedAt": iso(core.started_at),
        "health": health_json(core, clock, sessions),
        "sessions": sessions_json(sessions, names),
        "projects": [project_json(p) for p in projects],
        "chains": [chain_json(c, names) for c in core.chains()],
        "totals": totals_json(core.totals()),
        "budgets": budgets_json(core.budgets()),
        "approvals": [approval_json(a, names) for a in core.approvals()],
        "messages": message_totals_json(core.message_counts().values()),
        "events": [e.to_dict() for e in recent],
    }


def approval_json(approval: ApprovalInfo, names: Mapping[str, str]) -> JSON:
    """A request waiting for a person; times in epoch seconds, as the page counts them down."""
    return {
        "id": approval.id,
        "key": approval.key,
        "projectChannelId": approval.project_key,
        "projectName": names.get(approval.project_key, approval.project_key),
        "threadId": approval.thread_id,
        "kind": approval.kind,
        "tool": approval.tool,
        "summary": approval.summary,
        "requestedBy": approval.requested_by,
        "createdAt": approval.created_at,
        "expiresAt": approval.expires_at,
        "options": list(approval.options),
    }


def message_totals_json(counts: Iterable[ThreadCounts]) -> JSON:
    """The journal's messages of every thread, by where they are."""
    listed = list(counts)
    return {field: sum(getattr(c, field) for c in listed) for field in ("waiting", "running", "answered", "told")}


def budgets_json(budgets: Budgets) -> JSON:
    """Today's spend per project against its budget, and the threads paused at a limit."""
    return {
        "projects": [
            {"channelId": p.project_key, "day": p.day, "spentUsd": p.spent_usd, "budgetUsd": p.budget_usd}
            for p in budgets.projects
        ],
        "paused": [
            {
                "threadId": p.thread_id,
                "channelId": p.project_key,
                "limit": p.limit,
                "spentUsd": p.spent_usd,
                "limitUsd": p.limit_usd,
                "held": p.held,
                "since": iso(p.since),
            }
            for p in budgets.paused
        ],
    }
