"""The server-rendered dashboard page and the sign-in form.

The page is rendered from the very document ``/api/status`` returns, with the same
markup ``static/app.js`` builds when it updates the page live, so the page reads the
same with JavaScript off (it then reloads itself every 5 seconds). Every value that
comes from users or config goes through :func:`esc`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from mpg_tui.timefmt import format_ago, format_duration, format_run_length

JSON = Mapping[str, Any]
EVENT_LIMIT = 100

CONNECTION_LABELS = {
    "ready": "connected",
    "connecting": "connecting",
    "resuming": "reconnecting",
    "disconnected": "disconnected",
}


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


@cache
def _template(name: str) -> Template:
    text = resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")
    return Template(text)


# -- formatting (mirrored in static/app.js; durations and ages are mpg_tui.timefmt's) ----------------------


def fmt_cost(usd: float) -> str:
    if usd == 0:
        return "$0.00"
    if usd < 0.01:
        return f"${usd:.4f}"
    if usd < 1:
        return f"${usd:.3f}"
    return f"${usd:,.2f}"


def fmt_tokens(n: int) -> str:
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.2f}M"


def _clock_time(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s).strftime("%H:%M:%S")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# -- fragments -----------------------------------------------------------------------------------


def connection_pill(state: str) -> str:
    label = CONNECTION_LABELS.get(state, state)
    return (
        f'<span id="connection" class="pill conn-{esc(state)}" title="Discord connection">'
        f'<span class="dot"></span><span class="label">Discord {esc(label)}</span></span>'
    )


def _card(name: str, value: str, sub: str, tone: str = "") -> str:
    tone_class = f" tone-{tone}" if tone else ""
    return (
        f'<div class="card{tone_class}" data-card="{esc(name)}"><div class="card-label">{esc(name)}</div>'
        f'<div class="card-value">{esc(value)}</div><div class="card-sub">{esc(sub)}</div></div>'
    )


def cards(status: JSON) -> str:
    health = status["health"]["sessions"]
    totals = status["totals"]
    tokens = totals["inputTokens"] + totals["outputTokens"]
    agents = sum(len(p["agents"]) for p in status["projects"])
    return "".join(
        [
            _card(
                "Sessions",
                str(health["active"]),
                f"{health['running']} running · {health['queued']} queued",
                "accent" if health["running"] else "",
            ),
            _card("Runs", str(totals["runs"]), f"{totals['failures']} failed", "bad" if totals["failures"] else ""),
            _card("Cost", fmt_cost(totals["costUsd"]), "reported by claude"),
            _card(
                "Tokens",
                fmt_tokens(tokens),
                f"{fmt_tokens(totals['inputTokens'])} in · {fmt_tokens(totals['outputTokens'])} out",
            ),
            _card("Projects", str(len(status["projects"])), _plural(agents, "agent")),
            messages_card(status["messages"]),
        ]
    )


def messages_card(counts: JSON) -> str:
    """What the inbound journal holds: answered, and anything still waiting or running."""
    pending = counts["waiting"] + counts["running"]
    sub = f"{pending} waiting or running · {counts['told']} told"
    return _card("Messages", str(counts["answered"]), sub, "accent" if pending else "")


def session_label(session: JSON) -> str:
    """The thread's name beside the session key, when the gateway knows it."""
    name = session.get("threadName")
    return f"{name} · {session['key']}" if name else str(session["key"])


def paused_note(paused: JSON) -> str:
    """Why a thread does not run, and what lifts it (mirrored by ``pausedNote`` in app.js)."""
    limit = "today's project budget" if paused["limit"] == "day" else "its thread limit"
    return (
        f"paused at {limit}: {fmt_cost(paused['spentUsd'])} of {fmt_cost(paused['limitUsd'])}"
        f" · {_plural(int(paused['held']), 'message')} kept"
    )


def session_row(session: JSON, now: float, paused: JSON | None = None) -> str:
    state = session["state"]
    last = session["lastActivity"] / 1000
    detail = ""
    if paused is not None:
        detail = (
            f'<div class="detail paused">{esc(paused_note(paused))} '
            f'<button type="button" class="continue" data-continue="{esc(paused["threadId"])}">Continue</button></div>'
        )
    elif session.get("heldBy"):
        detail = f'<div class="detail held">open in a terminal ({esc(session["heldBy"])}): messages wait</div>'
    elif session["lastError"]:
        detail = f'<div class="detail error">{esc(session["lastError"])}</div>'
    elif state in ("running", "recovering") and session["progress"]:
        detail = f'<div class="detail">{esc(session["progress"][-1])}</div>'
    title = f"session {session['sessionId'] or '(new)'} · {session['cwd']}"
    agent = f"@{session['agent']}" if session["agent"] else "—"
    queue = session["queueLength"]
    return (
        f'<tr data-key="{esc(session["key"])}" data-state="{esc(state)}">'
        f'<td class="session-cell" title="{esc(title)}"><div class="primary">{esc(session["projectName"])}</div>'
        f'<div class="secondary mono"><a href="/?thread={esc(session["threadId"])}#conversation" '
        f'title="read the thread">{esc(session_label(session))}</a></div>{detail}</td>'
        f'<td><span class="badge state-{esc(state)}">{esc(state)}</span></td>'
        f'<td class="agent">{esc(agent)}</td>'
        f'<td class="num{" hot" if queue else ""}">{queue}</td>'
        f'<td><span class="runner">{esc(session["runner"])}</span></td>'
        f'<td class="num">{esc(fmt_cost(session["costUsd"]))}</td>'
        f'<td class="num">{esc(fmt_tokens(session["inputTokens"]))} / {esc(fmt_tokens(session["outputTokens"]))}</td>'
        f'<td class="num"><time class="ago" data-ts="{last}" datetime="{esc(session["lastActivityAt"])}">'
        f"{esc(format_ago(now - last))}</time></td></tr>"
    )


def sessions(status: JSON, now: float) -> str:
    rows = status["sessions"]
    if not rows:
        return (
            '<tr class="empty-row"><td colspan="8" class="empty">No sessions yet. Post in a mapped channel.</td></tr>'
        )
    paused = {p["threadId"]: p for p in status["budgets"]["paused"]}
    return "".join(session_row(s, now, paused.get(s["threadId"])) for s in rows)


def chain_card(chain: JSON) -> str:
    hops = ['<span class="hop hop-user"><b>user</b></span>']
    for hop in chain["hops"]:
        facts = [hop["state"]]
        if hop["durationMs"]:
            facts.append(format_run_length(hop["durationMs"] / 1000))
        if hop["costUsd"]:
            facts.append(fmt_cost(hop["costUsd"]))
        hops.append('<span class="arrow" aria-hidden="true">→</span>')
        hops.append(
            f'<span class="hop hop-{esc(hop["state"])}"><b>@{esc(hop["agent"])}</b>'
            f"<small>{esc(' · '.join(facts))}</small></span>"
        )
    summary = f"turn {chain['turns']}/{chain['maxTurns']}"
    if chain["durationMs"]:
        summary += f" · {format_run_length(chain['durationMs'] / 1000)}"
    if chain["costUsd"]:
        summary += f" · {fmt_cost(chain['costUsd'])}"
    return (
        f'<div class="chain" data-thread="{esc(chain["threadId"])}"><div class="chain-head">'
        f'<span class="primary">{esc(chain["projectName"])}</span>'
        f'<span class="secondary mono">thread {esc(chain["threadId"])}</span>'
        f'<span class="badge chain-{esc(chain["state"])}">{esc(chain["state"].replace("_", " "))}</span>'
        f'<span class="secondary push">{esc(summary)}</span></div>'
        f'<div class="hops">{"".join(hops)}</div></div>'
    )


def chains(status: JSON) -> str:
    if not status["chains"]:
        return '<div class="empty">No agent handoffs yet.</div>'
    return "".join(chain_card(c) for c in status["chains"])


def spend_tag(spend: JSON | None) -> str:
    """Today's spend against the project's daily budget (mirrored by ``spendTag`` in app.js)."""
    if spend is None or spend["budgetUsd"] is None:
        return ""
    used = spend["spentUsd"] / spend["budgetUsd"] if spend["budgetUsd"] > 0 else 1.0
    tone = " tag-bad" if used >= 1 else " tag-warn" if used >= 0.8 else ""
    text = f"today {fmt_cost(spend['spentUsd'])} of {fmt_cost(spend['budgetUsd'])}"
    return f'<span class="tag{tone}" data-spend>{esc(text)}</span>'


def project_card(project: JSON, spend: JSON | None = None) -> str:
    tags = [f'<span class="tag">{esc(project["persistence"])}</span>', spend_tag(spend)]
    if project["allowedRoles"]:
        tags.append(f'<span class="tag">roles: {esc(", ".join(project["allowedRoles"]))}</span>')
    if project["rateLimitPerUser"]:
        tags.append(f'<span class="tag">{esc(project["rateLimitPerUser"])}/min per user</span>')
    if project["worktrees"]:
        tags.append('<span class="tag">worktrees</span>')
    agents = "".join(
        f'<li><span class="agent">@{esc(a["name"])}</span><span class="role">{esc(a["role"])}</span></li>'
        for a in project["agentDetails"]
    )
    agent_list = f'<ul class="agents">{agents}</ul>' if agents else '<div class="secondary">No agents</div>'
    return (
        f'<div class="project" data-channel="{esc(project["channelId"])}"><div class="project-head">'
        f'<span class="primary">{esc(project["name"])}</span>'
        f'<span class="secondary mono">#{esc(project["channelId"])}</span></div>'
        f'<div class="dir mono">{esc(project["directory"])}</div>'
        f'<div class="tags">{"".join(tags)}</div>{agent_list}</div>'
    )


def projects(status: JSON) -> str:
    if not status["projects"]:
        return '<div class="empty">No projects configured.</div>'
    spend = {p["channelId"]: p for p in status["budgets"]["projects"]}
    return "".join(project_card(p, spend.get(p["channelId"])) for p in status["projects"])


APPROVAL_CHOICES = {
    "tool": (
        ("allow", "Allow once", "allow"),
        ("allow_session", "Allow for this session", ""),
        ("deny", "Deny", "deny"),
    ),
    "plan": (("allow", "Approve plan", "allow"), ("deny", "Keep planning", "deny")),
}
"""A request's buttons by kind (the chat card's words): (choice, label, tone)."""


EXPIRY_VERB = {"tool": "denied", "question": "declined", "plan": "rejected"}
"""What happens to an unanswered request at its timeout, by kind (the chat card's words)."""


def approval_choices(approval: JSON) -> list[tuple[str, str, str]]:
    if approval["kind"] == "question":
        options = [(f"option:{n}", str(label), "") for n, label in enumerate(approval["options"])]
        return [*options, ("deny", "Decline", "deny")]
    return list(APPROVAL_CHOICES.get(approval["kind"], APPROVAL_CHOICES["tool"]))


def approval_item(approval: JSON, now: float) -> str:
    """One request waiting for a person, with its buttons (mirrored by ``approvalItem`` in app.js)."""
    buttons = "".join(
        f'<button type="button" class="choice{" tone-" + tone if tone else ""}" data-choice="{esc(choice)}">'
        f"{esc(label)}</button>"
        for choice, label, tone in approval_choices(approval)
    )
    asked = f" · asked for by {esc(approval['requestedBy'])}" if approval["requestedBy"] else ""
    what = approval["tool"] if approval["kind"] == "tool" else approval["kind"]
    return (
        f'<li class="approval" data-approval="{esc(approval["id"])}" data-kind="{esc(approval["kind"])}">'
        f'<div class="approval-head"><span class="badge kind-{esc(approval["kind"])}">{esc(what)}</span>'
        f'<span class="primary">{esc(approval["projectName"])}</span>'
        f'<span class="secondary mono"><a href="/?thread={esc(approval["threadId"])}#conversation">'
        f"{esc(approval['key'])}</a>{asked}</span>"
        f'<span class="secondary push">{EXPIRY_VERB.get(approval["kind"], "denied")} in '
        f'<time class="left" data-until="{approval["expiresAt"]}">'
        f"{esc(format_duration(approval['expiresAt'] - now))}</time> unless decided</span></div>"
        f'<pre class="summary">{esc(approval["summary"])}</pre>'
        f'<div class="actions">{buttons}<span class="outcome" role="status"></span></div></li>'
    )


def approvals(status: JSON, now: float) -> str:
    if not status["approvals"]:
        return '<li class="empty">Nothing waits for a decision.</li>'
    return "".join(approval_item(a, now) for a in status["approvals"])


def _who(agent: object) -> str:
    return f"@{agent}" if agent else "user"


def summarize(event: JSON, names: Mapping[str, str]) -> str:
    """One line about an event, for the log (mirrored by ``summarize`` in app.js)."""

    def project() -> str:
        key = str(event.get("project_key", ""))
        return names.get(key, key)

    match event.get("kind"):
        case "message_received":
            return f"{event['author']} in {project()}: {event['content']}"
        case "message_rejected":
            return f"{event['author']} refused in {project()}: {event['reason']}"
        case "thread_opened":
            return f"thread “{event['name']}” opened in {project()}"
        case "session_queued":
            return f"{event['key']} queued at #{event['position']}"
        case "run_started":
            agent = f" as @{event['agent']}" if event.get("agent") else ""
            return f"{event['key']} started{agent} ({event['runner']}): {event['prompt_preview']}"
        case "run_progress":
            return f"{event['key']} · {event.get('tool') or event['step']}: {event['text']}"
        case "run_finished":
            if event["ok"]:
                return (
                    f"{event['key']} finished in {format_run_length(int(event['duration_ms']) / 1000)}"
                    f" · {fmt_cost(float(event['cost_usd']))}"
                )
            return f"{event['key']} failed: {event.get('error') or 'unknown error'}"
        case "run_recovering":
            return f"{event['key']} recovering after restart"
        case "handoff_step":
            return (
                f"{_who(event.get('from_agent'))} → @{event['to_agent']} in {project()}"
                f" (turn {event['turn']}/{event['max_turns']})"
            )
        case "handoff_stopped":
            return (
                f"chain in {project()} stopped: {str(event['reason']).replace('_', ' ')} after {event['turns']} turns"
            )
        case "session_killed" | "session_restarted" | "session_idled":
            verb = str(event["kind"]).removeprefix("session_")
            return f"{event['key']} {verb}"
        case "reply_sent":
            by = f" by @{event['agent']}" if event.get("agent") else ""
            return f"reply of {_plural(int(event['chunks']), 'chunk')} sent{by}"
        case "connection_changed":
            detail = f" ({event['detail']})" if event.get("detail") else ""
            return f"Discord {CONNECTION_LABELS.get(str(event['state']), event['state'])}{detail}"
        case "log":
            return f"{event['logger']}: {event['message']}"
        case "notice_sent":
            return f"said in {event['channel_id']}: {event['text']}"
        case "session_held":
            return f"{event['key']} held: open in a terminal ({event['holder']})"
        case "approval_requested":
            return f"{event['key']} waits: {event['tool']} · {event['summary']}"
        case "approval_decided":
            return f"{event['key']}: {event['tool']} {str(event['outcome']).replace('_', ' ')} by {event['decided_by']}"
        case "budget_warning" | "budget_paused":
            verb = "reached 80% of" if event["kind"] == "budget_warning" else "paused at"
            return (
                f"thread {event['thread_id']} {verb} its {event['limit']} limit:"
                f" {fmt_cost(float(event['spent_usd']))} of {fmt_cost(float(event['limit_usd']))}"
            )
        case "budget_continued":
            return (
                f"thread {event['thread_id']} continued by {event['by']}:"
                f" {event['limit']} limit now {fmt_cost(float(event['limit_usd']))}"
            )
        case "catch_up_finished":
            return (
                f"caught up: {_plural(int(event['handled']), 'message')} handled"
                f" in {_plural(int(event['places']), 'place')}, {event['skipped_old']} too old"
            )
        case "session_released":
            turns = event.get("turns")
            taken = "" if turns is None else f" ({_plural(int(turns), 'turn')} in the terminal)"
            return f"{event['key']} handed back{taken}"
        case _:
            return str(event.get("kind", "event"))


def event_item(event: JSON, names: Mapping[str, str]) -> str:
    kind = str(event.get("kind", "event"))
    level = f" level-{esc(str(event.get('level', '')).lower())}" if kind == "log" else ""
    at = float(event.get("at", 0))
    return (
        f'<li class="ev ev-{esc(kind)}{level}"><time data-ts="{at}">{esc(_clock_time(at))}</time>'
        f'<span class="kind">{esc(kind.replace("_", " "))}</span>'
        f'<span class="text">{esc(summarize(event, names))}</span></li>'
    )


def events(status: JSON, names: Mapping[str, str]) -> str:
    items = list(status["events"])[:EVENT_LIMIT]
    if not items:
        return '<li class="empty">Waiting for events…</li>'
    return "".join(event_item(e, names) for e in items)


CONVERSATION_MARKS = {"handoff": "⇢", "error": "✖", "held": "⏸", "released": "▶", "notice": "·"}


def conversation_entry(entry: JSON) -> str:
    """One line of a thread's conversation (mirrored by ``conversationEntry`` in app.js)."""
    kind = str(entry["kind"])
    when = f'<time class="mono">{esc(_clock_time(float(entry["at"])))}</time>'
    if kind in ("message", "reply"):
        return (
            f'<li class="say say-{esc(kind)}">{when} <b class="who">{esc(entry["who"])}</b>'
            f'<div class="text">{esc(entry["text"])}</div></li>'
        )
    mark = CONVERSATION_MARKS.get(kind, "·")
    return f'<li class="say say-{esc(kind)}">{when} <span class="note">{mark} {esc(entry["text"])}</span></li>'


def conversation(document: JSON | None) -> str:
    if document is None:
        return '<div class="empty">Pick a session above to read its thread here.</div>'
    items = "".join(conversation_entry(e) for e in document["entries"])
    if not items:
        items = '<li class="empty">Nothing said in this thread since the gateway started.</li>'
    return f'<ol id="conversation-entries" class="conversation" data-thread="{esc(document["threadId"])}">{items}</ol>'


def render_page(status: JSON, thread: JSON | None = None) -> str:
    now = float(status["serverTime"])
    names = {p["channelId"]: p["name"] for p in status["projects"]}
    project_count = len(status["projects"])
    return _template("index.html").substitute(
        server_time=esc(now),
        started_at=esc(now - status["health"]["uptime"]),
        version=esc(status["version"]),
        project_count=esc(_plural(project_count, "project")),
        connection=connection_pill(status["health"]["connection"]),
        uptime=esc(format_duration(status["health"]["uptime"])),
        cards=cards(status),
        session_count=len(status["sessions"]),
        sessions=sessions(status, now),
        approval_count=len(status["approvals"]),
        approvals=approvals(status, now),
        chain_count=len(status["chains"]),
        chains=chains(status),
        project_total=project_count,
        projects=projects(status),
        events=events(status, names),
        conversation=conversation(thread),
        conversation_title=esc(f"Conversation · thread {thread['threadId']}" if thread else "Conversation"),
    )


def render_login(error: str | None = None) -> str:
    message = f'<p class="login-error" role="alert">{esc(error)}</p>' if error else ""
    return _template("login.html").substitute(error=message)
