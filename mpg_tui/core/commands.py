"""The ``!`` commands: parsing them, running them against the sessions, and their replies.

Built-ins: ``!sessions``, ``!session [name]``, ``!stop [name]``, ``!restart <name>``, ``!kill <name>``,
``!agents``, ``!help``; and ``!ask <agent> <msg>`` / ``!<agent> <msg>``, which are not
answered here but handed back as :class:`DispatchToAgent`, and ``!continue [dollars]``,
handed back as :class:`ContinueRequest` (the gateway owns budgets and who may decide). Built-in names win over agent
names. A ``!word`` that is neither is not a command: it goes to claude as an ordinary
message, as in MPG (a prompt may well start with "!").

``<name>`` resolves, in order, as an exact session key; an agent of this project in the
current thread (``<thread>:<agent>``); a project's channel ID or name (its sessions; for
``!kill``/``!restart`` posted in one of that project's threads, only that thread's
sessions when it has any). Without a name, in a thread: the thread's default session, or
all of the thread's sessions when it has no default one; ``!session`` in a main channel
lists the project's sessions.

Access: the gateway refuses the whole message when its author lacks the current
project's ``allowedRoles`` (:func:`mpg_tui.core.access.check`). Commands that reach into
another project check that project's roles too, and ``!sessions`` lists only sessions of
projects the author may use.

Typical use by the gateway::

    outcome = await handle_command(msg.content, CommandContext.for_message(route, msg, projects, now), sessions)
    if isinstance(outcome, CommandResult): send each of outcome.chunks
    elif isinstance(outcome, DispatchToAgent): run outcome.target
    else: not a command (resolve_target(...) as for any message)
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from mpg_tui.config import Agent, ProjectView
from mpg_tui.core import access
from mpg_tui.core.api import KilledSession, SessionInfo
from mpg_tui.core.chunking import chunk_text
from mpg_tui.core.dispatch import AgentTarget, UnknownAgent, parse_agent_command, session_key
from mpg_tui.core.ports import InboundMessage
from mpg_tui.core.router import Route
from mpg_tui.timefmt import format_duration

BuiltinName = Literal["sessions", "session", "restart", "kill", "agents", "help", "continue", "stop"]
_BUILTINS: tuple[BuiltinName, ...] = ("sessions", "session", "restart", "kill", "agents", "help", "continue", "stop")
MAX_CONTINUE_USD = 10_000.0
CONTINUE_USAGE = (
    "Usage: `!continue` or `!continue <dollars>` (e.g. `!continue 2.50`), in the thread that is paused at its budget."
)

MAX_LISTED_SESSIONS = 50
MAX_DETAILED_SESSIONS = 5
_ERROR_PREVIEW = 300

HELP_TEXT = "\n".join(
    [
        "**Gateway commands**",
        "`!sessions` — list all active sessions",
        "`!session [name]` — inspect a session (ID, directory, queue, cost, resume command); "
        "in a thread, this thread's session",
        "`!stop [name]` — stop the turn Claude is working on (the session and its context stay); "
        "in a thread, this thread's",
        "`!restart <name>` — reset a session (fresh context, keeps worktree)",
        "`!kill <name>` — end a session (removes it from memory and disk, and its worktree)",
        "`!ask <agent> <message>` — send a message to an agent (shorthand: `!<agent> <message>`)",
        "`!agents` — list available agents for the current project",
        "`!continue [dollars]` — in a thread paused at its budget: allow it to spend more (once)",
        "`!help` — show this message",
        "",
        "`<name>` is a session key, an agent in this thread, or a project name.",
    ]
)


class SessionControl(Protocol):
    """What commands need from the session manager."""

    def sessions(self) -> list[SessionInfo]: ...

    def get(self, key: str) -> SessionInfo | None: ...

    async def kill_session(self, key: str) -> KilledSession | None: ...

    async def restart(self, key: str) -> bool: ...

    async def stop(self, key: str) -> bool: ...


@dataclass(frozen=True)
class CommandContext:
    """Where a command was posted and by whom."""

    project: ProjectView
    projects: Sequence[ProjectView]
    """Every configured project (for names in ``<name>`` and in listings)."""
    thread_id: str | None = None
    now: float = 0.0
    """Wall-clock time (``Clock.now()``), for idle times."""
    role_ids: tuple[str, ...] = ()
    role_names: tuple[str, ...] = ()

    @classmethod
    def for_message(
        cls, route: Route, message: InboundMessage, projects: Sequence[ProjectView], now: float
    ) -> CommandContext:
        return cls(
            project=route.project,
            projects=projects,
            thread_id=route.thread_id,
            now=now,
            role_ids=message.role_ids,
            role_names=message.role_names,
        )

    def may_use(self, project: ProjectView | None) -> bool:
        return project is None or access.allowed(project, self.role_ids, self.role_names)

    def project_by_key(self, key: str) -> ProjectView | None:
        return next((p for p in self.projects if p.key == key), None)

    def find_project(self, name: str) -> ProjectView | None:
        lowered = name.lower()
        return next((p for p in self.projects if p.key == name or p.name.lower() == lowered), None)


@dataclass(frozen=True)
class BuiltinCommand:
    name: BuiltinName
    arg: str = ""


Command = BuiltinCommand | AgentTarget | UnknownAgent


@dataclass(frozen=True)
class CommandResult:
    """A reply to post; ``chunks`` fit Discord's 2000-character limit."""

    text: str

    @property
    def chunks(self) -> list[str]:
        return chunk_text(self.text)


@dataclass(frozen=True)
class ContinueRequest:
    """``!continue [dollars]``: lift the budget this thread is paused at (the gateway checks who asks)."""

    amount_usd: float | None


@dataclass(frozen=True)
class DispatchToAgent:
    """``!ask``/``!<agent>``: run ``prompt`` on ``agent``'s session in this thread."""

    agent: Agent
    prompt: str

    @property
    def target(self) -> AgentTarget:
        return AgentTarget(self.agent, self.prompt, "command")


_COMMAND = re.compile(r"^!(?P<word>\S+)(?:\s+(?P<arg>.*))?$", re.DOTALL)


def parse_command(text: str, agents: Mapping[str, Agent]) -> Command | None:
    """The command ``text`` is, or None when it is an ordinary message."""
    stripped = text.strip()
    match = _COMMAND.match(stripped)
    if match is None:
        return None
    name = match["word"].lower()
    for builtin in _BUILTINS:
        if name == builtin:
            return BuiltinCommand(builtin, (match["arg"] or "").strip())
    return parse_agent_command(stripped, agents)


CommandOutcome = CommandResult | DispatchToAgent | ContinueRequest


async def handle_command(text: str, ctx: CommandContext, control: SessionControl) -> CommandOutcome | None:
    """Parse and run ``text``; None when it is not a command."""
    command = parse_command(text, ctx.project.agents)
    if command is None:
        return None
    return await execute(command, ctx, control)


async def execute(command: Command, ctx: CommandContext, control: SessionControl) -> CommandOutcome:
    if isinstance(command, UnknownAgent):
        return CommandResult(command.reply(ctx.project.agents))
    if isinstance(command, AgentTarget):
        assert command.agent is not None  # parse_agent_command only returns agent targets
        return DispatchToAgent(command.agent, command.prompt)
    match command.name:
        case "sessions":
            return CommandResult(_list_sessions(ctx, control))
        case "session":
            return CommandResult(_inspect(command.arg, ctx, control))
        case "kill" | "restart":
            return CommandResult(await _kill_or_restart(command.name, command.arg, ctx, control))
        case "stop":
            return CommandResult(await _stop(command.arg, ctx, control))
        case "agents":
            return CommandResult(agents_text(ctx.project))
        case "help":
            return CommandResult(HELP_TEXT)
        case "continue":
            try:
                amount = parse_amount(command.arg)
            except ValueError:
                return CommandResult(CONTINUE_USAGE)
            return ContinueRequest(amount) if ctx.thread_id is not None else CommandResult(CONTINUE_USAGE)


def parse_amount(text: str) -> float | None:
    """``""`` -> None (the configured limit again), ``"2.50"`` or ``"$2.50"`` -> 2.5.

    Raises ValueError for anything else, or an amount not above 0 and up to :data:`MAX_CONTINUE_USD`.
    """
    word = text.strip().removeprefix("$")
    if not word:
        return None
    amount = float(word)
    if not 0 < amount <= MAX_CONTINUE_USD:  # also refuses nan
        raise ValueError(f"amount out of range: {word}")
    return amount


def agents_text(project: ProjectView) -> str:
    if not project.agents:
        return f"**{project.name}** — No agents configured. Messages go to the default session."
    lines = "\n".join(f"- `@{a.name}` — {a.role}" for a in project.agents.values())
    return (
        f"**{project.name} agents**\n{lines}\n\n"
        "Mention an agent to dispatch: `@pm review this` (or `!ask <agent> <message>`)"
    )


def _project_name(ctx: CommandContext, key: str) -> str:
    project = ctx.project_by_key(key)
    return project.name if project else key


def _idle(ctx: CommandContext, info: SessionInfo) -> str:
    return f"{format_duration(ctx.now - info.last_activity)} ago"


def _list_sessions(ctx: CommandContext, control: SessionControl) -> str:
    visible = [s for s in control.sessions() if ctx.may_use(ctx.project_by_key(s.project_key))]
    if not visible:
        return "No active sessions."
    visible.sort(key=lambda s: s.last_activity, reverse=True)
    lines = []
    for s in visible[:MAX_LISTED_SESSIONS]:
        agent = f" · @{s.agent}" if s.agent else ""
        queue = f", queue: {s.queue_depth}" if s.queue_depth else ""
        queue += f", held by {s.held_by}" if s.held_by else ""
        project = _project_name(ctx, s.project_key)
        lines.append(f"- `{s.key}` **{project}**{agent} — {s.state}, last active {_idle(ctx, s)}{queue}")
    if len(visible) > MAX_LISTED_SESSIONS:
        lines.append(f"…and {len(visible) - MAX_LISTED_SESSIONS} more.")
    return f"**Active sessions ({len(visible)})**\n" + "\n".join(lines)


def resume_command(info: SessionInfo) -> str | None:
    """The shell line that resumes the session in a terminal, or None before its first run."""
    if not info.session_id:
        return None
    return f"cd {shlex.quote(info.cwd)} && claude --resume {shlex.quote(info.session_id)}"


def session_details(info: SessionInfo, ctx: CommandContext) -> str:
    where = " (thread)" if info.thread_id else ""
    agent = f" · @{info.agent}" if info.agent else ""
    lines = [
        f"**{_project_name(ctx, info.project_key)}** · `{info.key}`{where}{agent}",
        f"State: {info.state} · Queue depth: {info.queue_depth}",
        f"Session ID: `{info.session_id}`" if info.session_id else "Session ID: none (the next message starts one)",
        f"Last active: {_idle(ctx, info)}",
        f"Directory: `{info.cwd}`" + (" (worktree)" if info.worktree_path else ""),
        f"Usage: {info.runs} runs · ${info.cost_usd:.4f} · "
        f"{info.input_tokens:,} input / {info.output_tokens:,} output tokens",
    ]
    if info.held_since is not None:
        since = format_duration(ctx.now - info.held_since)
        lines.append(
            f"Held: open in a terminal ({info.held_by or 'unknown'}) since {since} ago"
            " — messages wait until it is handed back"
        )
    if info.tmux_session:
        lines.append(f"tmux: `{info.tmux_session}`")
    if info.last_error:
        lines.append(f"Last error: {info.last_error[:_ERROR_PREVIEW]}")
    resume = resume_command(info)
    if resume:
        lines.append(f"Resume: `{resume}`")
    return "\n".join(lines)


@dataclass(frozen=True)
class _Found:
    label: str
    sessions: list[SessionInfo]


def _usage(command: str) -> str:
    return (
        f"Usage: `!{command} <name>` — a session key, an agent in this thread, or a project name "
        f"(or run `!{command}` in a thread)."
    )


def _resolve(arg: str, ctx: CommandContext, control: SessionControl, *, prefer_thread: bool) -> _Found | str:
    """The sessions ``arg`` names, or the reply explaining why there are none to act on."""
    name = arg.strip()
    if not name:
        if ctx.thread_id is None:
            raise ValueError("an empty name needs a thread")
        default = control.get(ctx.thread_id)
        if default is not None:
            return _Found("This thread", [default])
        prefix = f"{ctx.thread_id}:"
        return _Found("This thread", [s for s in control.sessions() if s.key.startswith(prefix)])
    exact = control.get(name)
    if exact is not None:
        return _Found(f"`{name}`", [exact])
    agent = ctx.project.agent(name.removeprefix("@"))
    if ctx.thread_id is not None and agent is not None:
        info = control.get(session_key(ctx.thread_id, agent.name))
        return _Found(f"`@{agent.name}` in this thread", [info] if info else [])
    project = ctx.find_project(name)
    if project is None:
        shown = name.replace("`", "")
        return f"No session or project found matching `{shown}`."
    if not ctx.may_use(project):
        return access.denial_text(project)
    sessions = [s for s in control.sessions() if s.project_key == project.key]
    if prefer_thread and ctx.thread_id is not None and project.key == ctx.project.key:
        here = [s for s in sessions if s.thread_id == ctx.thread_id]
        sessions = here or sessions
    return _Found(f"**{project.name}**", sessions)


def _usable(found: _Found, ctx: CommandContext) -> _Found | str:
    allowed = [s for s in found.sessions if ctx.may_use(ctx.project_by_key(s.project_key))]
    if found.sessions and not allowed:
        project = ctx.project_by_key(found.sessions[0].project_key)
        assert project is not None  # may_use is only False for a known project
        return access.denial_text(project)
    return _Found(found.label, allowed)


def _inspect(arg: str, ctx: CommandContext, control: SessionControl) -> str:
    if not arg.strip() and ctx.thread_id is None:
        found: _Found | str = _Found(
            f"**{ctx.project.name}**", [s for s in control.sessions() if s.project_key == ctx.project.key]
        )
    else:
        found = _resolve(arg, ctx, control, prefer_thread=False)
    if isinstance(found, _Found):
        found = _usable(found, ctx)
    if isinstance(found, str):
        return found
    if not found.sessions:
        return f"{found.label} — no active session."
    shown = sorted(found.sessions, key=lambda s: s.last_activity, reverse=True)
    parts = [session_details(s, ctx) for s in shown[:MAX_DETAILED_SESSIONS]]
    if len(shown) > MAX_DETAILED_SESSIONS:
        parts.append(f"…and {len(shown) - MAX_DETAILED_SESSIONS} more — `!sessions` lists them all.")
    return "\n\n".join(parts)


async def _kill_or_restart(
    command: Literal["kill", "restart"], arg: str, ctx: CommandContext, control: SessionControl
) -> str:
    if not arg.strip() and ctx.thread_id is None:
        return _usage(command)
    found = _resolve(arg, ctx, control, prefer_thread=True)
    if isinstance(found, _Found):
        found = _usable(found, ctx)
    if isinstance(found, str):
        return found
    if not found.sessions:
        return f"{found.label} — no active session to {command}."
    lines = []
    for info in found.sessions:
        project = _project_name(ctx, info.project_key)
        if command == "kill":
            killed = await control.kill_session(info.key)
            if killed is None:
                lines.append(f"Session `{info.key}` was gone.")
                continue
            lines.append(f"Session `{info.key}` (**{project}**) killed.")
            if killed.kept_branch:
                lines.append(f"Its branch had unmerged commits: kept as `{killed.kept_branch}`.")
        else:
            done = await control.restart(info.key)
            lines.append(
                f"Session `{info.key}` (**{project}**) restarted — next message will start fresh context."
                if done
                else f"Session `{info.key}` was gone."
            )
    return "\n".join(lines)


async def _stop(arg: str, ctx: CommandContext, control: SessionControl) -> str:
    if not arg.strip() and ctx.thread_id is None:
        return _usage("stop")
    found = _resolve(arg, ctx, control, prefer_thread=True)
    if isinstance(found, _Found):
        found = _usable(found, ctx)
    if isinstance(found, str):
        return found
    running = [s for s in found.sessions if s.state in ("running", "recovering")]
    if not running:
        return f"{found.label} — nothing is running to stop."
    lines = []
    for info in running:
        project = _project_name(ctx, info.project_key)
        if await control.stop(info.key):
            lines.append(f"Stopping the turn of `{info.key}` (**{project}**); the session stays.")
        else:
            lines.append(f"Session `{info.key}` had already finished its turn.")
    return "\n".join(lines)
