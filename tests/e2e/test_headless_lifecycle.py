"""Starting and stopping the headless gateway: restarts, SIGTERM mid-run, ``mpg-tui stop``.

Each test runs its own gateway process(es) on a profile of its own, against one sandbox
shared by the module (each test in its own channel).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from mpg_tui.core.gateway import LOST_RUN_TEXT
from mpg_tui.sandbox.discord import SandboxServer, SandboxSpec
from mpg_tui.worktrees import git_environment
from tests.e2e.gateway_process import Chat, Profile, open_thread, process_alive, run_cli, running_gateway, write_profile

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

CHANNELS = ("restart", "sigterm", "stop", "kept")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[SandboxServer]:
    async with SandboxServer(SandboxSpec.default(CHANNELS)) as server:
        yield server


@pytest.fixture
def chat(sandbox: SandboxServer) -> Chat:
    return Chat(sandbox)


def profile_for(sandbox: SandboxServer, root: Path, channel: str) -> Profile:
    """A profile that maps only ``channel``, to a project of the same name."""
    return write_profile(
        root,
        api_base=sandbox.api_base,
        token=sandbox.token,
        projects={sandbox.spec.channel(channel).id: (channel, {})},
    )


async def test_restart_resumes_the_thread_session_from_disk(sandbox: SandboxServer, chat: Chat, tmp_path: Path) -> None:
    profile = profile_for(sandbox, tmp_path, "restart")
    async with running_gateway(profile) as first_life:
        first, thread_id = await open_thread(chat, chat.channel("restart"), "noted", "remember the word marigold")
        assert await first_life.terminate() == 0
    session_id = profile.claude_session_started_by("restart", first.content)
    assert profile.stored_sessions()[thread_id]["sessionId"] == session_id
    # The thread's name is kept with its session: what a restarted gateway shows.
    code, status_out, _ = await run_cli(profile, "status", "--config", str(profile.config_path))
    assert code == 0 and f"({thread_id})" in status_out and "[[reply:noted]]" in status_out

    async with running_gateway(profile) as second_life:
        again = await chat.post(thread_id, "[[recall]] which word was it?")
        await chat.sent(thread_id, f"previous: {first.content}", again.seq)
        assert await second_life.terminate() == 0

    (run,) = profile.agent_log.asked("which word was it?")
    assert run.resumed == session_id


async def test_sigterm_during_a_run_ends_claude_keeps_sessions_and_the_next_start_says_the_run_was_lost(
    sandbox: SandboxServer, chat: Chat, tmp_path: Path
) -> None:
    profile = profile_for(sandbox, tmp_path, "sigterm")
    async with running_gateway(profile) as gateway:
        first, thread_id = await open_thread(chat, chat.channel("sigterm"), "warmed up", "start a session")
        slow = await chat.post(thread_id, "[[sleep:120]] work on this for a long time")
        # The live status line appears once claude reports progress: it is running now.
        status = await chat.sent_starting(thread_id, "⚙️ Claude is working", slow.seq)
        (run,) = profile.agent_log.asked("work on this for a long time")
        assert process_alive(run.pid)

        assert await gateway.terminate() == 0

    assert not process_alive(run.pid)
    # Before Discord was closed, the thread was told and the live status line removed.
    await chat.sent_starting(thread_id, "**Error**: ", slow.seq)
    await chat.wait(lambda a: a.kind == "message_deleted" and a.message_id == status.message_id, slow.seq)
    stored = profile.stored_sessions()[thread_id]
    assert stored["sessionId"] == profile.claude_session_started_by("sigterm", first.content)
    assert stored["pendingRun"]["runner"] == "direct"
    assert "Traceback" not in gateway.stderr.text

    restarted = sandbox.last_seq
    async with running_gateway(profile) as next_life:
        await chat.sent(thread_id, LOST_RUN_TEXT, restarted)
        assert await next_life.terminate() == 0
    assert "pendingRun" not in profile.stored_sessions()[thread_id]


async def test_mpg_tui_stop_stops_the_running_gateway(sandbox: SandboxServer, tmp_path: Path) -> None:
    profile = profile_for(sandbox, tmp_path, "stop")
    async with running_gateway(profile) as gateway:
        assert profile.pid_file.read_text(encoding="ascii").strip() == str(gateway.pid)

        code, stdout, _ = await run_cli(profile, "stop", "--config", str(profile.config_path))

        assert code == 0 and "Stopped." in stdout
        assert await gateway.wait_exit() == 0
    assert not profile.pid_file.exists()
    code, stdout, _ = await run_cli(profile, "stop", "--config", str(profile.config_path))
    assert code == 0 and "is not running" in stdout


async def test_a_rejected_token_ends_the_gateway_with_a_plain_message(sandbox: SandboxServer, tmp_path: Path) -> None:
    profile = write_profile(
        tmp_path,
        api_base=sandbox.api_base,
        token="not-the-sandbox-token",
        projects={sandbox.spec.channel("stop").id: ("stop", {})},
    )
    code, _, stderr = await run_cli(profile, "--no-ui", "--config", str(profile.config_path))

    assert code == 1
    assert "Discord rejected the bot token (401). Check DISCORD_BOT_TOKEN" in stderr
    assert "Traceback" not in stderr and "not-the-sandbox-token" not in stderr
    assert not profile.pid_file.exists()


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), "-c", "user.name=T", "-c", "user.email=t@example.invalid", *args],
        capture_output=True,
        text=True,
        check=True,
        env=git_environment(),
    )
    return done.stdout


async def test_kill_keeps_a_worktree_branch_with_unmerged_commits_and_says_so(
    sandbox: SandboxServer, chat: Chat, tmp_path: Path
) -> None:
    profile = write_profile(
        tmp_path,
        api_base=sandbox.api_base,
        token=sandbox.token,
        projects={sandbox.spec.channel("kept").id: ("kept", {"worktrees": True})},
    )
    project = profile.projects["kept"]
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "commit", "--quiet", "--allow-empty", "-m", "init")
    async with running_gateway(profile) as gateway:
        _, thread_id = await open_thread(chat, chat.channel("kept"), "on it", "write the feature")
        (run,) = profile.agent_log.asked("write the feature")
        worktree = Path(run.cwd)
        assert worktree.parent == project.resolve() / ".worktrees"
        (worktree / "feature.txt").write_text("agent's work\n")  # what claude would have committed
        git(worktree, "add", "feature.txt")
        git(worktree, "commit", "--quiet", "-m", "feature")

        kill = await chat.post(thread_id, "!kill")
        killed = f"Session `{thread_id}` (**kept**) killed."
        kept = f"Its branch had unmerged commits: kept as `mpg/kept/{thread_id}`."
        await chat.sent(thread_id, f"{killed}\n{kept}", kill.seq)
        assert await gateway.terminate() == 0

    assert not worktree.exists()
    assert git(project, "branch", "--list", "mpg/*").split() == [f"mpg/kept/{thread_id}"]
    assert git(project, "show", f"mpg/kept/{thread_id}:feature.txt") == "agent's work\n"
    assert f"kept branch mpg/{thread_id} as mpg/kept/{thread_id}" in profile.log_file.read_text(encoding="utf-8")


async def test_mpgs_pid_file_is_honoured_both_ways(sandbox: SandboxServer, tmp_path: Path) -> None:
    profile = profile_for(sandbox, tmp_path, "stop")
    mpg_pid_file = Path(profile.env["MPG_HOME"]) / "mpg.pid"
    mpg_pid_file.parent.mkdir(parents=True)
    # A stand-in for a running MPG: a live process whose PID is in MPG's PID file.
    mpg = await asyncio.create_subprocess_exec(sys.executable, "-c", "import signal; signal.pause()")
    try:
        mpg_pid_file.write_text(f"{mpg.pid}\n", encoding="ascii")
        where = ("--config", str(profile.config_path))

        code, _, stderr = await run_cli(profile, "--no-ui", *where)
        assert code == 1
        assert f"MPG is already running for this profile (PID {mpg.pid}, PID file {mpg_pid_file})" in stderr
        _, doctor_out, _ = await run_cli(profile, "doctor", *where)
        assert f"running (PID {mpg.pid}, PID file {mpg_pid_file})" in " ".join(doctor_out.split())

        code, stdout, _ = await run_cli(profile, "stop", *where)
        assert code == 0 and f"Stopping MPG (PID {mpg.pid}" in stdout and "Stopped." in stdout
        assert await mpg.wait() == -signal.SIGTERM
    finally:
        if mpg.returncode is None:
            mpg.kill()
            await mpg.wait()

    # The other way round: while mpg-tui runs, MPG's PID file names it, so MPG refuses to start.
    async with running_gateway(profile) as gateway:
        assert mpg_pid_file.read_text(encoding="ascii").strip() == str(gateway.pid)
        assert await gateway.terminate() == 0
    assert not mpg_pid_file.exists()
