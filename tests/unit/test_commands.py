from dataclasses import replace

import pytest

from mpg_tui.config import ProjectView, parse_config
from mpg_tui.core.api import KilledSession, SessionInfo
from mpg_tui.core.commands import (
    HELP_TEXT,
    BuiltinCommand,
    CommandContext,
    CommandResult,
    DispatchToAgent,
    SessionControl,
    handle_command,
    parse_command,
    resume_command,
)
from mpg_tui.core.dispatch import AgentTarget, UnknownAgent
from mpg_tui.core.ports import InboundMessage
from mpg_tui.core.router import Router

NOW = 1_700_000_000.0
CONFIG = parse_config(
    {
        "projects": {
            "100": {"name": "Alpha", "directory": "/srv/alpha", "agents": ["pm", "engineer"]},
            "200": {"name": "Beta", "directory": "/srv/beta"},
            "300": {"name": "Secret", "directory": "/srv/secret", "allowedRoles": ["Ops"]},
        }
    }
)
ROUTER = Router(CONFIG)


def project(key: str) -> ProjectView:
    view = ROUTER.project(key)
    assert view is not None
    return view


def session(key: str, project_key: str = "100", **changes: object) -> SessionInfo:
    thread, _, agent = key.partition(":")
    info = SessionInfo(
        key=key,
        project_key=project_key,
        thread_id=thread,
        agent=agent or None,
        cwd=f"/srv/{project_key}",
        session_id=f"sid-{key}",
        state="idle",
        queue_depth=0,
        last_activity=NOW - 90,
        runner="direct",
    )
    return replace(info, **changes)  # type: ignore[arg-type]


class FakeSessions:
    def __init__(self, *infos: SessionInfo) -> None:
        self.infos = {i.key: i for i in infos}
        self.killed: list[str] = []
        self.kept: dict[str, str] = {}
        self.restarted: list[str] = []
        self.stopped: list[str] = []

    def sessions(self) -> list[SessionInfo]:
        return list(self.infos.values())

    def get(self, key: str) -> SessionInfo | None:
        return self.infos.get(key)

    async def kill_session(self, key: str) -> KilledSession | None:
        self.killed.append(key)
        info = self.infos.pop(key, None)
        if info is None:
            return None
        return KilledSession(key, info.project_key, kept_branch=self.kept.get(key))

    async def restart(self, key: str) -> bool:
        self.restarted.append(key)
        return key in self.infos

    async def stop(self, key: str) -> bool:
        self.stopped.append(key)
        return key in self.infos


def ctx(project_key: str = "100", thread: str | None = None, roles: tuple[str, ...] = ()) -> CommandContext:
    return CommandContext(
        project=project(project_key), projects=ROUTER.projects(), thread_id=thread, now=NOW, role_names=roles
    )


async def run(text: str, context: CommandContext, control: SessionControl) -> str:
    result = await handle_command(text, context, control)
    assert isinstance(result, CommandResult), result
    return result.text


def test_fake_satisfies_the_protocol() -> None:
    control: SessionControl = FakeSessions()
    assert control.sessions() == []


# Parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!sessions", BuiltinCommand("sessions")),
        ("!SESSIONS extra", BuiltinCommand("sessions", "extra")),
        ("!session", BuiltinCommand("session")),
        ("!session  Alpha  ", BuiltinCommand("session", "Alpha")),
        ("!kill 123:pm", BuiltinCommand("kill", "123:pm")),
        ("!restart\nAlpha", BuiltinCommand("restart", "Alpha")),
        ("!agents", BuiltinCommand("agents")),
        ("  !help", BuiltinCommand("help")),
        ("!ask pm hi", AgentTarget(project("100").agents["pm"], "hi", "command")),
        ("!engineer fix", AgentTarget(project("100").agents["engineer"], "fix", "command")),
        ("!ask ceo hi", UnknownAgent("ceo")),
        ("!deploy now", None),
        ("!sessionsx", None),
        ("hello", None),
        ("", None),
    ],
)
def test_parse_command(text: str, expected: object) -> None:
    assert parse_command(text, project("100").agents) == expected


async def test_unknown_bang_word_is_an_ordinary_message() -> None:
    assert await handle_command("!deploy to prod", ctx(), FakeSessions()) is None


async def test_ask_is_handed_back_for_dispatch() -> None:
    result = await handle_command("!ask pm write the spec", ctx(thread="t1"), FakeSessions())
    assert result == DispatchToAgent(project("100").agents["pm"], "write the spec")
    assert isinstance(result, DispatchToAgent)
    assert result.target == AgentTarget(project("100").agents["pm"], "write the spec", "command")


async def test_ask_for_unknown_agent_lists_the_agents() -> None:
    text = await run("!ask ceo decide", ctx(), FakeSessions())
    assert text.startswith("Unknown agent `ceo`. Available agents:\n- `pm` — Product Manager")


# !help, !agents


async def test_help_lists_every_command() -> None:
    text = await run("!help", ctx(), FakeSessions())
    assert text == HELP_TEXT
    for command in ("!sessions", "!session", "!restart", "!kill", "!ask", "!agents", "!help"):
        assert f"`{command}" in text


async def test_agents_lists_agents_of_this_project() -> None:
    text = await run("!agents", ctx(thread="t1"), FakeSessions())
    assert text.startswith("**Alpha agents**\n- `@pm` — Product Manager\n- `@engineer` — Software Engineer\n\n")


async def test_agents_without_agents() -> None:
    text = await run("!agents", ctx("200"), FakeSessions())
    assert text == "**Beta** — No agents configured. Messages go to the default session."


# !sessions


async def test_sessions_lists_key_project_agent_state_idle_and_queue() -> None:
    control = FakeSessions(
        session("t1"),
        session("t1:pm", state="running", queue_depth=2, last_activity=NOW - 5),
        session("t9", project_key="200", last_activity=NOW - 7500),
    )
    text = await run("!sessions", ctx(), control)
    assert text.split("\n") == [
        "**Active sessions (3)**",
        "- `t1:pm` **Alpha** · @pm — running, last active 5s ago, queue: 2",
        "- `t1` **Alpha** — idle, last active 1m ago",
        "- `t9` **Beta** — idle, last active 2h 05m ago",
    ]


async def test_sessions_when_there_are_none() -> None:
    assert await run("!sessions", ctx(), FakeSessions()) == "No active sessions."


async def test_sessions_hides_projects_the_author_may_not_use() -> None:
    control = FakeSessions(session("t1"), session("s1", project_key="300"))
    assert "`s1`" not in await run("!sessions", ctx(), control)
    assert "`s1`" in await run("!sessions", ctx(roles=("Ops",)), control)


async def test_long_session_list_is_capped_and_fits_discord() -> None:
    control = FakeSessions(*(session(f"t{i}", last_activity=NOW - i) for i in range(80)))
    result = await handle_command("!sessions", ctx(), control)
    assert isinstance(result, CommandResult)
    assert result.text.endswith("…and 30 more.")
    assert all(len(chunk) <= 2000 for chunk in result.chunks)
    assert len(result.chunks) >= 2


# !session


async def test_session_in_a_thread_shows_this_threads_default_session() -> None:
    control = FakeSessions(
        session(
            "t1",
            cwd="/srv/alpha/.worktrees/t1",
            worktree_path="/srv/alpha/.worktrees/t1",
            queue_depth=1,
            cost_usd=0.01234,
            input_tokens=1234,
            output_tokens=567,
            runs=3,
        ),
        session("t1:pm"),
    )
    text = await run("!session", ctx(thread="t1"), control)
    assert text.split("\n") == [
        "**Alpha** · `t1` (thread)",
        "State: idle · Queue depth: 1",
        "Session ID: `sid-t1`",
        "Last active: 1m ago",
        "Directory: `/srv/alpha/.worktrees/t1` (worktree)",
        "Usage: 3 runs · $0.0123 · 1,234 input / 567 output tokens",
        "Resume: `cd /srv/alpha/.worktrees/t1 && claude --resume sid-t1`",
    ]


async def test_session_without_default_shows_all_of_this_threads_sessions() -> None:
    control = FakeSessions(session("t1:pm"), session("t1:engineer"), session("t2"))
    text = await run("!session", ctx(thread="t1"), control)
    assert "`t1:pm`" in text and "`t1:engineer`" in text and "`t2`" not in text


async def test_session_by_agent_name_in_a_thread() -> None:
    control = FakeSessions(session("t1"), session("t1:pm", agent="pm"))
    text = await run("!session @pm", ctx(thread="t1"), control)
    assert text.startswith("**Alpha** · `t1:pm` (thread) · @pm")


async def test_session_by_exact_key_and_by_project_name() -> None:
    control = FakeSessions(session("t1"), session("t9", project_key="200"))
    assert (await run("!session t9", ctx(), control)).startswith("**Beta** · `t9`")
    assert (await run("!session beta", ctx(), control)).startswith("**Beta** · `t9`")


async def test_session_in_main_channel_lists_this_projects_sessions() -> None:
    control = FakeSessions(session("t1"), session("t9", project_key="200"))
    text = await run("!session", ctx(), control)
    assert "`t1`" in text and "`t9`" not in text


async def test_session_not_found_and_no_active_session() -> None:
    assert await run("!session nope", ctx(), FakeSessions()) == "No session or project found matching `nope`."
    assert await run("!session Beta", ctx(), FakeSessions()) == "**Beta** — no active session."
    assert await run("!session pm", ctx(thread="t1"), FakeSessions()) == "`@pm` in this thread — no active session."


async def test_session_without_session_id_has_no_resume_line() -> None:
    text = await run("!session", ctx(thread="t1"), FakeSessions(session("t1", session_id=None)))
    assert "Session ID: none (the next message starts one)" in text
    assert "Resume:" not in text


async def test_session_shows_tmux_and_last_error() -> None:
    info = session("t1", tmux_session="mpg-t1", last_error="API Error: 529 overloaded")
    text = await run("!session", ctx(thread="t1"), FakeSessions(info))
    assert "tmux: `mpg-t1`" in text
    assert "Last error: API Error: 529 overloaded" in text


def test_resume_command_quotes_paths_with_spaces() -> None:
    info = session("t1", cwd="/srv/my project", session_id="abc-123")
    assert resume_command(info) == "cd '/srv/my project' && claude --resume abc-123"


async def test_session_of_a_project_the_author_may_not_use_is_refused() -> None:
    control = FakeSessions(session("s1", project_key="300"))
    denial = "You don't have permission to use this project. Required role: Ops"
    assert await run("!session Secret", ctx(), control) == denial
    assert await run("!session s1", ctx(), control) == denial
    assert (await run("!session s1", ctx(roles=("Ops",)), control)).startswith("**Secret**")


# !kill, !restart


async def test_kill_without_name_in_thread_kills_this_threads_default_session() -> None:
    control = FakeSessions(session("t1"), session("t1:pm"))
    text = await run("!kill", ctx(thread="t1"), control)
    assert text == "Session `t1` (**Alpha**) killed."
    assert control.killed == ["t1"]


async def test_kill_without_name_in_main_channel_explains_usage() -> None:
    control = FakeSessions(session("t1"))
    text = await run("!kill", ctx(), control)
    assert text.startswith("Usage: `!kill <name>`")
    assert control.killed == []


async def test_kill_agent_session_of_this_thread() -> None:
    control = FakeSessions(session("t1"), session("t1:pm"), session("t2:pm"))
    assert await run("!kill pm", ctx(thread="t1"), control) == "Session `t1:pm` (**Alpha**) killed."
    assert control.killed == ["t1:pm"]


async def test_kill_by_project_name_in_its_thread_prefers_this_threads_sessions() -> None:
    control = FakeSessions(session("t1"), session("t1:pm"), session("t2"))
    await run("!kill alpha", ctx(thread="t1"), control)
    assert control.killed == ["t1", "t1:pm"]


async def test_kill_by_project_name_from_main_channel_kills_all_its_sessions() -> None:
    control = FakeSessions(session("t1"), session("t2"), session("t9", project_key="200"))
    text = await run("!kill Alpha", ctx(), control)
    assert control.killed == ["t1", "t2"]
    assert text.count("killed.") == 2


async def test_restart_clears_and_says_so() -> None:
    control = FakeSessions(session("t1"))
    text = await run("!restart t1", ctx(), control)
    assert text == "Session `t1` (**Alpha**) restarted — next message will start fresh context."
    assert control.restarted == ["t1"]


async def test_restart_with_nothing_to_restart() -> None:
    assert await run("!restart Beta", ctx(), FakeSessions()) == "**Beta** — no active session to restart."
    assert await run("!kill", ctx(thread="t1"), FakeSessions()) == "This thread — no active session to kill."


async def test_kill_reports_a_session_that_vanished_meanwhile() -> None:
    class Vanishing(FakeSessions):
        async def kill_session(self, key: str) -> KilledSession | None:
            self.killed.append(key)
            return None

    assert await run("!kill t1", ctx(), Vanishing(session("t1"))) == "Session `t1` was gone."


async def test_kill_says_under_which_name_unmerged_work_was_kept() -> None:
    control = FakeSessions(session("t1"), session("t1:pm"))
    control.kept["t1:pm"] = "mpg/kept/t1-pm"
    assert await run("!kill", ctx(thread="t1"), control) == "Session `t1` (**Alpha**) killed."
    assert await run("!kill pm", ctx(thread="t1"), control) == (
        "Session `t1:pm` (**Alpha**) killed.\nIts branch had unmerged commits: kept as `mpg/kept/t1-pm`."
    )


async def test_kill_in_a_project_the_author_may_not_use_is_refused() -> None:
    control = FakeSessions(session("s1", project_key="300"))
    assert (await run("!kill Secret", ctx(), control)).startswith("You don't have permission")
    assert (await run("!kill s1", ctx(), control)).startswith("You don't have permission")
    assert control.killed == []


def test_context_for_message_carries_thread_and_roles() -> None:
    message = InboundMessage(
        id="m", channel_id="t1", parent_channel_id="100", author_id="u", author_name="ann", content="!kill",
        role_ids=("9",), role_names=("Ops",),
    )  # fmt: skip
    route = ROUTER.route(message)
    assert route is not None
    context = CommandContext.for_message(route, message, ROUTER.projects(), NOW)
    assert (context.project.key, context.thread_id, context.role_ids, context.role_names) == (
        "100",
        "t1",
        ("9",),
        ("Ops",),
    )
