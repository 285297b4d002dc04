"""Abuse the gateway must refuse: hostile prompts and names, people without the role, floods, loops, leaks.

Most tests run a whole gateway in this process against a sandbox of their own; the token
test runs the real ``mpg-tui --no-ui`` process, since its log file, its stderr, its
dashboard and ``mpg-tui status`` are what must not leak.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import aiohttp
import pytest

from mpg_tui.config import ConfigError, parse_config
from mpg_tui.core.ports import InboundMessage
from mpg_tui.runners.names import is_session_name, session_name
from mpg_tui.sandbox.discord import SandboxServer
from mpg_tui.worktrees import BRANCH_PREFIX, WORKTREES_DIR, is_safe_name
from tests.dashboard.test_security import raw_get
from tests.e2e.gateway_process import WAIT_S, Profile, run_cli, running_gateway
from tests.faults.conftest import TOKEN, Channels, StartWorld, World, profile_for, sandbox_spec

AGENTS = ["pm", "engineer"]


# -- hostile prompts ----------------------------------------------------------------------


async def prompt_reaching_claude(world: World, content: str, marker: str) -> str:
    """Post ``content`` (which makes claude reply ``marker``); the prompt claude was given."""
    posted, thread_id = await world.ask("work", content)
    await world.chat.sent(thread_id, marker, posted.seq)
    (run,) = world.profile.agent_log.asked(marker)
    assert run.prompt is not None
    assert not any(marker in arg for arg in run.argv)  # on stdin, never on the command line
    return run.prompt


async def test_shell_metacharacters_reach_claude_verbatim_and_are_never_run(start_world: StartWorld) -> None:
    world = await start_world({"work": {}})
    project = world.profile.projects["work"]
    hostile = "[[reply:meta ok]] $(touch pwned1) `touch pwned2`; touch pwned3 && echo 'x' | tee pwned4 > pwned5 \\"

    assert await prompt_reaching_claude(world, hostile, "meta ok") == hostile
    assert sorted(p.name for p in project.iterdir()) == []
    assert not list(world.profile.root.rglob("pwned*"))


async def test_a_prompt_starting_with_a_dash_reaches_claude_verbatim_not_as_a_flag(start_world: StartWorld) -> None:
    world = await start_world({"work": {}})
    dashed = "--dangerously-skip-permissions -p --version [[reply:dash ok]]"

    assert await prompt_reaching_claude(world, dashed, "dash ok") == dashed


async def test_nul_bytes_are_dropped_from_a_prompt_and_the_rest_reaches_claude(start_world: StartWorld) -> None:
    world = await start_world({"work": {}})

    prompt = await prompt_reaching_claude(world, "[[reply:nul ok]] before\x00after\x00", "nul ok")

    assert prompt == "[[reply:nul ok]] beforeafter"


async def test_a_100_kb_prompt_reaches_claude_verbatim(start_world: StartWorld) -> None:
    # Discord caps a message at 2000 characters; another chat port might not, so hand it to the core directly.
    world = await start_world({"work": {}})
    channel = world.channel("work")
    body = "[[reply:big ok]] " + ("0123456789abcdef" * 6400)
    seq = world.sandbox.last_seq
    alice = world.sandbox.spec.user("alice")
    message = InboundMessage(
        id="1574000000000000001",
        channel_id=channel,
        author_id=alice.id,
        author_name=alice.username,
        content=body,
        guild_id=world.sandbox.spec.guild.id,
        role_ids=alice.roles,
    )

    await world.runtime.gateway.handle_message(message)

    # The message is not on Discord, so no thread could be opened on it: the answer is in the channel.
    await world.chat.sent(channel, "big ok", seq)
    (run,) = world.profile.agent_log.asked("big ok")
    assert run.prompt == body and len(body.encode()) > 100_000


# -- hostile names ------------------------------------------------------------------------

HOSTILE_AGENTS = {"..": {"role": "Dots", "prompt": "p"}, "-rf": {"role": "Dash", "prompt": "p"}}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


def make_repository(profile: Profile) -> None:
    project = profile.projects["repo"]
    git(project, "init", "--quiet", "--initial-branch=main")
    (project / "README.md").write_text("# repo\n", encoding="utf-8")
    git(project, "add", "README.md")
    git(project, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "--quiet", "-m", "init")


async def test_crafted_agent_and_thread_names_stay_inside_the_project_and_make_safe_tmux_and_branch_names(
    start_world: StartWorld,
) -> None:
    world = await start_world(
        {"repo": {"agents": HOSTILE_AGENTS}}, defaults={"worktrees": True}, prepare=make_repository
    )
    project = world.profile.projects["repo"]
    outside_before = sorted(p.name for p in project.parent.iterdir())
    for name in HOSTILE_AGENTS:
        posted = await world.chat.post(world.channel("repo"), f"!ask {name} [[reply:{name} ok]] ../../x;\n rm")
        thread_id = await world.chat.thread_for(posted)
        await world.chat.sent_starting(thread_id, f"{name} ok", posted.seq)
        created = next(a for a in world.sandbox.actions if a.kind == "thread_created" and a.message_id == posted.id)
        assert "\n" not in created.payload["name"]  # a thread name is one line of text, nothing more
        key = f"{thread_id}:{name}"
        assert is_session_name(session_name(key)) and not set(session_name(key)) & set(":./;\n ")

    worktrees = sorted((project / WORKTREES_DIR).iterdir())
    assert len(worktrees) == 2 and all(is_safe_name(path.name) for path in worktrees)
    branches = git(project, "branch", "--list", f"{BRANCH_PREFIX}*", "--format=%(refname:short)").split()
    assert sorted(branches) == sorted(BRANCH_PREFIX + path.name for path in worktrees)
    for branch in branches:
        git(project, "check-ref-format", "--branch", branch)
    runs = world.profile.agent_log.invocations()
    assert sorted(Path(run.cwd) for run in runs) == worktrees
    assert sorted(p.name for p in project.parent.iterdir()) == outside_before  # nothing made beside the project


@pytest.mark.parametrize("name", ["a;b", "../up", "x/y", "two\nlines", "sp ace", "$(id)"])
def test_agent_names_that_could_escape_a_path_or_command_are_refused_by_config(name: str) -> None:
    with pytest.raises(ConfigError, match=r"may only use letters, digits, '_', '-' and '\.'"):
        parse_config({"projects": {"123456789012345678": {"directory": "/srv/p", "agents": {name: {"preset": "pm"}}}}})


# -- who may ask, and how often -----------------------------------------------------------


async def test_a_member_without_the_role_can_run_no_command_and_reach_no_agent(start_world: StartWorld) -> None:
    world = await start_world({"guarded": {"allowedRoles": ["developer"], "agents": AGENTS}})
    channel = world.channel("guarded")
    denial = "You don't have permission to use this project. Required role: developer"
    _, thread_id = await world.ask("guarded", "@pm [[reply:alice's work]] plan something")
    await world.chat.sent(thread_id, "alice's work", 0)
    runs_before = len(world.profile.agent_log.invocations())
    attempts = ["!help", "!sessions", "!session", "!agents", "!kill", "!restart", "!ask pm hi", "!pm hi", "@pm hi"]

    for where in (channel, thread_id):
        for attempt in [*attempts, "plain words"]:
            posted = await world.chat.post(where, attempt, user="bob")
            await world.chat.sent(where, denial, posted.seq)

    assert len(world.profile.agent_log.invocations()) == runs_before
    assert len([a for a in world.sandbox.actions if a.kind == "thread_created"]) == 1  # alice's only
    assert world.runtime.gateway.session(f"{thread_id}:pm") is not None  # bob's !kill did nothing


async def test_rate_limits_hold_per_user_and_per_project(start_world: StartWorld) -> None:
    world = await start_world({"first": {"rateLimitPerUser": 1}, "second": {"rateLimitPerUser": 1}})
    too_fast = "You're sending messages too quickly. Please wait"

    await world.still_serves("first", "alice first")
    refused = await world.chat.post(world.channel("first"), "[[reply:never]] alice again")
    await world.chat.sent_starting(world.channel("first"), too_fast, refused.seq)
    await world.still_serves("second", "alice in another project")
    posted, thread_id = await world.ask("first", "[[reply:bob first]] bob's turn", user="bob")
    await world.chat.sent(thread_id, "bob first", posted.seq)

    assert world.profile.agent_log.asked("alice again") == []
    assert len(world.profile.agent_log.invocations()) == 3


async def test_a_handoff_ping_pong_stops_at_the_turn_limit(start_world: StartWorld) -> None:
    world = await start_world({"loop": {"agents": AGENTS}}, defaults={"maxTurnsPerAgent": 3})
    ping_pong = "[[echo]]\nHANDOFF @pm: ping\nHANDOFF @engineer: pong"
    posted, thread_id = await world.ask("loop", f"@pm {ping_pong}")
    limit = await world.chat.sent(thread_id, "⚠️ Agent turn limit reached (3) — send a message to reset.", posted.seq)

    runs = world.profile.agent_log.invocations()
    assert len(runs) == 4  # the human's turn and three handoffs
    assert max(a.seq for a in world.chat.actions_in(thread_id)) == limit.seq  # nothing after the limit


# -- the bot token ------------------------------------------------------------------------


async def test_the_bot_token_never_reaches_logs_the_dashboard_status_crash_messages_or_claude(
    tmp_path: Path,
) -> None:
    channels: Channels = {"secret": {}}
    async with SandboxServer(sandbox_spec(channels)) as sandbox:
        profile = profile_for(sandbox, tmp_path, channels, {"httpPort": 0, "logLevel": "debug"})
        async with running_gateway(profile) as gateway:
            await gateway.stderr.wait_for("Dashboard at http://", WAIT_S)
            url = re.search(r"Dashboard at (http://\S+/)", gateway.stderr.text)
            assert url is not None
            channel = sandbox.spec.channel("secret").id
            chat_actions_before = sandbox.last_seq
            crashed = await sandbox.post_as_user(channel, sandbox.spec.user("alice").id, "[[error:crash]] crash")
            slow = await sandbox.post_as_user(channel, sandbox.spec.user("alice").id, "[[sleep:1]] [[reply:x]] wait")
            await sandbox.wait_for(lambda a: a.text.startswith("**Error**: Claude exited"), WAIT_S, after=0)
            await sandbox.wait_for(lambda a: a.kind == "message_sent" and a.text == "x", WAIT_S, after=0)

            pages = []
            async with aiohttp.ClientSession() as client:
                for path in ("", "health", "api/status", "api/sessions", "api/projects", "api/chains", "metrics"):
                    async with client.get(url.group(1) + path) as response:
                        assert response.status == 200
                        pages.append(await response.text())
            code, status_out, status_err = await run_cli(profile, "status", "--config", str(profile.config_path))
            assert await gateway.terminate() == 0

    assert code == 0 and str(profile.sessions_path) in status_out
    said = [a.text for a in sandbox.action_log.snapshot(chat_actions_before)]
    assert any(text.startswith("**Error**: Claude exited with code 2") for text in said)
    for place in [*pages, status_out, status_err, gateway.stderr.text, gateway.stdout.text, *said]:
        assert TOKEN not in place
    assert TOKEN not in profile.log_file.read_text(encoding="utf-8")
    runs = profile.agent_log.invocations()
    assert len(runs) == 2 and all("DISCORD_BOT_TOKEN" not in run.env_names for run in runs)
    assert {crashed["id"], slow["id"]} <= {a.message_id for a in sandbox.actions if a.kind == "thread_created"}


async def test_claude_runs_without_the_token_in_its_environment(
    start_world: StartWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in a real gateway, whose token comes from its environment (or .env, loaded into it).
    monkeypatch.setenv("DISCORD_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("MPG_DASHBOARD_TOKEN", "dashboard-token-0123456789")
    world = await start_world({"work": {}})
    posted, thread_id = await world.ask("work", "[[sleep:60]] look around")
    await world.chat.sent_starting(thread_id, "⚙️ Claude is working", posted.seq)
    (run,) = world.profile.agent_log.asked("look around")
    environ = Path(f"/proc/{run.pid}/environ").read_bytes()
    stop = await world.chat.post(thread_id, "!kill")
    await world.chat.sent_starting(thread_id, f"Session `{thread_id}`", stop.seq)

    assert b"CLAUDE_CONFIG_DIR=" in environ  # what claude needs does reach it
    assert TOKEN.encode() not in environ and b"dashboard-token-0123456789" not in environ
    assert b"DISCORD_BOT_TOKEN=" not in environ


# -- the dashboard ------------------------------------------------------------------------


async def test_dashboard_answers_no_one_without_the_token_when_reachable_beyond_loopback(
    start_world: StartWorld,
) -> None:
    dashboard_token = "d" * 32
    world = await start_world(
        {"work": {}}, defaults={"httpPort": 0, "httpHost": "0.0.0.0", "dashboardToken": dashboard_token}
    )
    url = world.runtime.dashboard_url
    assert url is not None and url.startswith("http://127.0.0.1:")
    await world.still_serves("work", "something to show")

    async with aiohttp.ClientSession() as client:
        for path in ("", "api/status", "api/sessions", "health", "metrics", "api/events"):
            async with client.get(url + path, headers={"Accept": "application/json"}) as response:
                assert response.status == 401, path
                assert "something to show" not in await response.text()
        async with client.get(url + "api/sessions", headers={"Authorization": f"Bearer {dashboard_token}"}) as ok:
            assert ok.status == 200 and "something to show" in await ok.text()


async def test_dashboard_without_a_token_refuses_a_non_loopback_bind_and_the_gateway_serves_on(
    start_world: StartWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world = await start_world({"work": {}}, defaults={"httpPort": 0, "httpHost": "0.0.0.0"})

    assert world.runtime.dashboard is None
    assert any("refusing to serve the dashboard on 0.0.0.0 without a token" in r.getMessage() for r in caplog.records)
    await world.still_serves("work", "served without a dashboard")


async def test_dashboard_on_loopback_refuses_other_host_names_and_any_path_outside_its_files(
    start_world: StartWorld,
) -> None:
    world = await start_world({"work": {}}, defaults={"httpPort": 0})
    url = world.runtime.dashboard_url
    assert url is not None

    async with (
        aiohttp.ClientSession() as client,
        client.get(url + "api/status", headers={"Host": "attacker.example"}) as rebound,
    ):
        assert rebound.status == 421
    for target in ("/static/../../config.json", "/static/..%2f..%2fsessions.json", "/static/%2e%2e%2fserver.py"):
        status, body = await raw_get(url, target)
        assert status == 404
        assert TOKEN.encode() not in body and b"projects" not in body
