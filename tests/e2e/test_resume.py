"""``mpg-tui resume``: a real gateway process lends a session to a terminal and takes it back.

The gateway is ``mpg-tui --no-ui`` on the loopback sandbox; the holder is a real
``mpg-tui resume`` process running the stand-in claude's interactive mode, fed through a
pipe. Nothing sleeps: the test waits on the sandbox's action log and the processes' output.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mpg_tui.sandbox.discord import SandboxServer, SandboxSpec
from tests.e2e.gateway_process import (
    WAIT_S,
    Chat,
    Invocation,
    Profile,
    _Output,
    open_thread,
    run_cli,
    running_gateway,
    write_profile,
)

pytestmark = [pytest.mark.e2e]

CHANNEL = "resume"
HELD = "🔒 This session is open in a terminal"


class Holder:
    """``mpg-tui resume`` with a pipe for stdin: what the operator types into claude."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stdout, self.stderr = _Output(), _Output()
        assert process.stdout is not None and process.stderr is not None
        self._pumps = [
            asyncio.create_task(self.stdout.pump(process.stdout)),
            asyncio.create_task(self.stderr.pump(process.stderr)),
        ]

    @classmethod
    async def spawn(cls, profile: Profile, session: str, *args: str) -> Holder:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mpg_tui",
            "resume",
            session,
            "--config",
            str(profile.config_path),
            *args,
            cwd=profile.config_path.parent,
            env=profile.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: the test can end it and its claude together
        )
        return cls(process)

    async def type(self, *lines: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("".join(f"{line}\n" for line in lines).encode())
        await self.process.stdin.drain()

    async def wait_exit(self) -> int:
        async with asyncio.timeout(WAIT_S):
            code = await self.process.wait()
            await asyncio.gather(*self._pumps)
        return code

    async def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.stdin is not None:
            self.process.stdin.close()
        await self.process.wait()
        for pump in self._pumps:
            pump.cancel()


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    async with SandboxServer(SandboxSpec.default((CHANNEL,))) as server:
        yield server


@pytest.fixture
def profile(sandbox: SandboxServer, tmp_path: Path) -> Profile:
    return write_profile(
        tmp_path,
        api_base=sandbox.api_base,
        token=sandbox.token,
        projects={sandbox.spec.channel(CHANNEL).id: (CHANNEL, {})},
    )


def runs_asking(profile: Profile, marker: str) -> list[Invocation]:
    """Print-mode runs of claude whose prompt has ``marker`` (the gateway's runs, not the terminal's)."""
    return [i for i in profile.agent_log.asked(marker) if "-p" in i.argv or "--print" in i.argv]


async def test_a_held_session_runs_its_message_only_after_the_terminal_hands_it_back(
    sandbox: SandboxServer, profile: Profile
) -> None:
    chat = Chat(sandbox)
    async with running_gateway(profile):
        _, thread_id = await open_thread(chat, chat.channel(CHANNEL), "opened", "start")
        (session_id,) = profile.claude_sessions(CHANNEL)
        holder = await Holder.spawn(profile, thread_id)
        try:
            await holder.stderr.wait_for("Holding", WAIT_S)
            await holder.stdout.wait_for("resuming", WAIT_S)  # the terminal's claude shows the conversation

            asked = await chat.post(thread_id, "[[reply:after the hold]] carry on")
            await chat.sent_starting(thread_id, HELD, asked.seq)
            assert runs_asking(profile, "carry on") == []

            await holder.type("first in the terminal", "second in the terminal", "")
            assert await holder.wait_exit() == 0
            back = await chat.sent_starting(thread_id, "🔓 Back from the terminal.", asked.seq)
            assert "2 turns taken there" in back.text
            await chat.sent(thread_id, "after the hold", back.seq)
        finally:
            await holder.close()

        (run,) = runs_asking(profile, "carry on")
        assert run.resumed == session_id
        texts = [a.text for a in chat.actions_in(thread_id, asked.seq) if a.kind == "message_sent"]
        assert texts.count("after the hold") == 1 and sum(t.startswith(HELD) for t in texts) == 1


async def test_killing_the_holder_hands_the_session_back_when_its_lease_runs_out(
    sandbox: SandboxServer, profile: Profile
) -> None:
    chat = Chat(sandbox)
    async with running_gateway(profile):
        _, thread_id = await open_thread(chat, chat.channel(CHANNEL), "opened", "start")
        holder = await Holder.spawn(profile, thread_id, "--lease", "5")
        try:
            await holder.stdout.wait_for("resuming", WAIT_S)
            asked = await chat.post(thread_id, "[[reply:ran after all]] are you there")
            await chat.sent_starting(thread_id, HELD, asked.seq)

            # No hand-back: the holder and its claude die at once, as with a closed SSH session.
            os.killpg(holder.process.pid, signal.SIGKILL)
            assert await holder.wait_exit() == -signal.SIGKILL

            gone = await chat.sent_starting(thread_id, "🔓 The terminal holding this session went away", asked.seq)
            await chat.sent(thread_id, "ran after all", gone.seq)
        finally:
            await holder.close()
        assert len(runs_asking(profile, "are you there")) == 1


async def test_resume_of_an_unknown_or_ambiguous_session_fails_with_status_2(
    sandbox: SandboxServer, profile: Profile
) -> None:
    chat = Chat(sandbox)
    config = ("--config", str(profile.config_path))
    async with running_gateway(profile):
        _, first = await open_thread(chat, chat.channel(CHANNEL), "one", "first thread")
        _, second = await open_thread(chat, chat.channel(CHANNEL), "two", "second thread")
        common = next(n for n in range(len(first), 0, -1) if first[:n] == second[:n])

        code, _, stderr = await run_cli(profile, "resume", "no-such-session", *config)
        assert code == 2 and "no session matches 'no-such-session'" in stderr

        code, _, stderr = await run_cli(profile, "resume", first[:common], *config)
        assert code == 2 and "matches 2 sessions" in stderr and first in stderr and second in stderr


async def test_resume_without_a_running_gateway_says_so(profile: Profile) -> None:
    code, _, stderr = await run_cli(profile, "resume", "123", "--config", str(profile.config_path))
    assert code == 1 and "no gateway of profile" in stderr
