"""Nothing lost, nothing flooded: catch-up after downtime, the journal across SIGKILL, long replies.

Real ``mpg-tui --no-ui`` processes over loopback, one sandbox for the module, each test
in its own channels and profile.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from mpg_tui.core.delivery import REPLY_FILENAME
from mpg_tui.core.embeds import queued_text
from mpg_tui.core.gateway import LOST_RUN_TEXT
from mpg_tui.sandbox.discord import SandboxServer, SandboxSpec
from tests.e2e.gateway_process import (
    WAIT_S,
    Chat,
    GatewayProcess,
    Profile,
    open_thread,
    running_gateway,
    write_profile,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

CHANNELS = ("downtime", "killed", "stale", "huge")
CAUGHT_UP = "Catch-up finished:"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[SandboxServer]:
    async with SandboxServer(SandboxSpec.default(CHANNELS)) as server:
        yield server


@pytest.fixture
def chat(sandbox: SandboxServer) -> Chat:
    return Chat(sandbox)


def profile_for(sandbox: SandboxServer, root: Path, channel: str, defaults: dict[str, Any] | None = None) -> Profile:
    return write_profile(
        root,
        api_base=sandbox.api_base,
        token=sandbox.token,
        projects={sandbox.spec.channel(channel).id: (channel, {})},
        defaults=defaults,
    )


def bot_texts(chat: Chat, channel_id: str) -> list[str]:
    return [a.text for a in chat.actions_in(channel_id) if a.kind == "message_sent"]


async def test_messages_posted_while_the_gateway_was_stopped_are_answered_once_and_not_again(
    chat: Chat, tmp_path: Path
) -> None:
    profile = profile_for(chat.sandbox, tmp_path, "downtime")
    channel = chat.channel("downtime")
    async with running_gateway(profile) as first_life:
        _, thread_id = await open_thread(chat, channel, "before the stop", "hello")
        assert await first_life.terminate() == 0

    in_channel = await chat.post(channel, "[[reply:caught in the channel]] asked while it was down")
    in_thread = await chat.post(thread_id, "[[reply:caught in the thread]] and here too")

    async with running_gateway(profile) as second_life:
        await chat.sent(thread_id, "caught in the thread", in_thread.seq)
        new_thread = await chat.thread_for(in_channel)
        await chat.sent(new_thread, "caught in the channel", in_channel.seq)
        await second_life.stderr.wait_for(CAUGHT_UP, WAIT_S)
        assert await second_life.terminate() == 0

    async with running_gateway(profile) as third_life:
        await third_life.stderr.wait_for(CAUGHT_UP, WAIT_S)
        # Proof this life serves: it answers a new message, after its catch-up found nothing.
        await open_thread(chat, channel, "third life", "still there?")
        assert await third_life.terminate() == 0

    assert bot_texts(chat, thread_id).count("caught in the thread") == 1
    assert bot_texts(chat, new_thread).count("caught in the channel") == 1
    assert len(profile.agent_log.asked("asked while it was down")) == 1
    assert len(profile.agent_log.asked("and here too")) == 1


async def test_sigkill_with_two_messages_queued_answers_both_after_restart_and_tells_the_running_one(
    chat: Chat, tmp_path: Path
) -> None:
    profile = profile_for(chat.sandbox, tmp_path, "killed")
    channel = chat.channel("killed")
    gateway = await GatewayProcess.spawn(profile)
    try:
        await gateway.wait_ready()
        long_run = await chat.post(channel, "[[tool:Bash:make]] [[sleep:60]] the long job")
        thread_id = await chat.thread_for(long_run)
        await chat.sent_starting(thread_id, "⚙️", long_run.seq)  # the long run is running
        second = await chat.post(thread_id, "[[reply:second answered]] the second")
        await chat.sent(thread_id, queued_text(1), second.seq)
        third = await chat.post(thread_id, "[[reply:third answered]] the third")
        await chat.sent(thread_id, queued_text(2), third.seq)
        gateway.process.send_signal(signal.SIGKILL)
        await gateway.wait_exit()
    finally:
        await gateway.kill()

    restarted = chat.sandbox.last_seq
    async with running_gateway(profile) as second_life:
        await chat.sent(thread_id, LOST_RUN_TEXT, restarted)
        await chat.sent(thread_id, "third answered", restarted)
        await second_life.stderr.wait_for(CAUGHT_UP, WAIT_S)
        assert await second_life.terminate() == 0

    after = [t for t in bot_texts(chat, thread_id) if t in (LOST_RUN_TEXT, "second answered", "third answered")]
    assert after == [LOST_RUN_TEXT, "second answered", "third answered"]
    assert len(profile.agent_log.asked("the second")) == 1
    assert len(profile.agent_log.asked("the third")) == 1


async def test_a_message_older_than_catch_up_max_age_is_skipped_and_counted(chat: Chat, tmp_path: Path) -> None:
    profile = profile_for(chat.sandbox, tmp_path, "stale", {"catchUpMaxAgeMs": 1})
    channel = chat.channel("stale")
    async with running_gateway(profile) as first_life:
        await open_thread(chat, channel, "fresh", "hello")
        assert await first_life.terminate() == 0

    stale = await chat.post(channel, "[[reply:never]] posted long ago, as far as this profile cares")
    async with running_gateway(profile) as second_life:
        await second_life.stderr.wait_for(CAUGHT_UP, WAIT_S)
        assert await second_life.terminate() == 0

    assert "Catch-up skipped 1 message(s) older than" in second_life.stderr.text
    assert not [a for a in chat.actions_in(channel, stale.seq) if a.kind == "thread_created"]
    assert profile.agent_log.asked("posted long ago") == []


async def test_a_10_mb_reply_takes_at_most_6_messages_and_comes_whole_as_an_attachment(
    chat: Chat, tmp_path: Path
) -> None:
    profile = profile_for(chat.sandbox, tmp_path, "huge")
    size = 10_000_000
    async with running_gateway(profile) as gateway:
        posted = await chat.post(chat.channel("huge"), f"[[chars:{size}]] write a lot")
        thread_id = await chat.thread_for(posted)
        attached = await chat.wait(
            lambda a: a.kind == "message_sent" and a.channel_id == thread_id and bool(a.payload.get("attachments")),
            posted.seq,
        )
        assert await gateway.terminate() == 0

    sent = [a for a in chat.actions_in(thread_id) if a.kind == "message_sent" and not a.text.startswith("⚙️")]
    assert len(sent) <= 6
    [file] = attached.payload["attachments"]
    assert file["filename"] == REPLY_FILENAME and file["size"] == size
