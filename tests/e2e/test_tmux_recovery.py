"""tmux-backed runs survive the gateway: SIGKILL it mid-run, start it again, the thread gets the result.

Real processes throughout: the headless gateway, tmux on a socket of the test's own, and
the stand-in claude inside it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from mpg_tui.sandbox.discord import SandboxServer, SandboxSpec
from tests.e2e.gateway_process import Chat, Profile, open_thread, process_alive, running_gateway, write_profile

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

CHANNELS = ("in-progress", "finished-while-down", "hostile")
RECOVERED = "🔄 Resumed after gateway restart"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[SandboxServer]:
    async with SandboxServer(SandboxSpec.default(CHANNELS)) as server:
        yield server


@pytest.fixture
def chat(sandbox: SandboxServer) -> Chat:
    return Chat(sandbox)


@pytest.fixture
def socket_name() -> Iterator[str]:
    name = f"mpg-test-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True, check=False)


def tmux_sessions(socket_name: str) -> list[str]:
    listed = subprocess.run(
        ["tmux", "-L", socket_name, "list-sessions", "-F", "#{session_name}"], capture_output=True, text=True
    )
    return listed.stdout.split()


def profile_for(sandbox: SandboxServer, root: Path, channel: str, socket_name: str) -> Profile:
    return write_profile(
        root,
        api_base=sandbox.api_base,
        token=sandbox.token,
        projects={sandbox.spec.channel(channel).id: (channel, {})},
        defaults={"persistence": "tmux", "tmuxSocket": socket_name},
    )


def run_files(profile: Profile) -> list[Path]:
    run_dir = profile.locations.run_dir
    return sorted(run_dir.rglob("*")) if run_dir.exists() else []


async def wait_for_tmux_run_to_end(socket_name: str, profile: Profile) -> None:
    """Block on the run's own completion signal (tmux wait-for), as the runner does."""
    (request,) = profile.locations.run_dir.glob("*/request.json")
    channel = json.loads(request.read_text(encoding="utf-8"))["channel"]
    waiter = await asyncio.create_subprocess_exec("tmux", "-L", socket_name, "wait-for", channel)
    async with asyncio.timeout(60):
        await waiter.wait()


async def test_a_run_in_progress_when_the_gateway_is_sigkilled_is_delivered_after_restart(
    sandbox: SandboxServer, chat: Chat, tmp_path: Path, socket_name: str
) -> None:
    profile = profile_for(sandbox, tmp_path, "in-progress", socket_name)
    async with running_gateway(profile) as gateway:
        _, thread_id = await open_thread(chat, chat.channel("in-progress"), "ready", "start a session")
        slow = await chat.post(thread_id, "[[sleep:4]] [[reply:built it while you were away]] build it")
        await chat.sent_starting(thread_id, "⚙️ Claude is working", slow.seq)
        (run,) = profile.agent_log.asked("build it")
        await gateway.kill()  # SIGKILL: no shutdown code runs at all

    assert process_alive(run.pid), "the tmux run must outlive the gateway"
    assert len(tmux_sessions(socket_name)) == 1

    restarted = sandbox.last_seq
    async with running_gateway(profile) as next_life:
        notice = await chat.sent(thread_id, RECOVERED, restarted)
        await chat.sent(thread_id, "built it while you were away", notice.seq)
        assert await next_life.terminate() == 0

    assert tmux_sessions(socket_name) == []
    assert run_files(profile) == []
    assert "pendingRun" not in profile.stored_sessions()[thread_id]


async def test_a_run_that_finished_while_the_gateway_was_down_is_delivered_after_restart(
    sandbox: SandboxServer, chat: Chat, tmp_path: Path, socket_name: str
) -> None:
    profile = profile_for(sandbox, tmp_path, "finished-while-down", socket_name)
    async with running_gateway(profile) as gateway:
        _, thread_id = await open_thread(chat, chat.channel("finished-while-down"), "ready", "start a session")
        quick = await chat.post(thread_id, "[[sleep:1]] [[reply:done before you came back]] finish it")
        await chat.sent_starting(thread_id, "⚙️ Claude is working", quick.seq)
        await gateway.kill()

    await wait_for_tmux_run_to_end(socket_name, profile)

    restarted = sandbox.last_seq
    async with running_gateway(profile) as next_life:
        notice = await chat.sent(thread_id, RECOVERED, restarted)
        await chat.sent(thread_id, "done before you came back", notice.seq)
        assert await next_life.terminate() == 0
    assert tmux_sessions(socket_name) == []
    assert run_files(profile) == []


async def test_a_hostile_prompt_reaches_claude_in_tmux_verbatim_and_nothing_is_left_behind(
    sandbox: SandboxServer, chat: Chat, tmp_path: Path, socket_name: str
) -> None:
    profile = profile_for(sandbox, tmp_path, "hostile", socket_name)
    canary = tmp_path / "pwned"
    hostile = f'[[echo]] it\'s "quoted" $(touch {canary}) `touch {canary}` ; rm -rf / \n-x --help\nend'
    async with running_gateway(profile) as gateway:
        posted = await chat.post(chat.channel("hostile"), hostile)
        thread_id = await chat.thread_for(posted)
        await chat.sent_starting(thread_id, "[[echo]] it's", posted.seq)
        assert await gateway.terminate() == 0

    (run,) = profile.agent_log.asked("rm -rf /")
    assert run.prompt == hostile
    assert not canary.exists()
    assert tmux_sessions(socket_name) == []
    assert run_files(profile) == []
