"""Discord misbehaving: dropped connections, refused and failing REST calls, moderators at work.

Each test runs a whole gateway in this process against its own sandbox. Faults are the
sandbox's: connection drops, injected 429/5xx answers, refused thread creation, messages
deleted and threads archived by someone else.
"""

from __future__ import annotations

import asyncio

import pytest

from mpg_tui.core.events import CatchUpFinished, ConnectionChanged, Event, MessageReceived, RunFinished, RunStarted
from tests.e2e.gateway_process import WAIT_S
from tests.faults.conftest import Channels, StartWorld

CHANNELS: Channels = {"work": {}, "others": {}}


async def test_connection_dropped_mid_run_resumes_and_replies_exactly_once(start_world: StartWorld) -> None:
    world = await start_world(CHANNELS)
    chat, sandbox = world.chat, world.sandbox
    resumed = asyncio.ensure_future(
        world.runtime.bus.wait_for(ConnectionChanged, lambda e: e.detail == "resumed", timeout=WAIT_S)
    )
    dropped: list[int] = []
    world.once(RunStarted, lambda _e: dropped.append(sandbox.drop_connections()))
    posted, thread_id = await world.ask("work", "[[sleep:1]] [[reply:survived the drop]] a long job")
    # Posted while the bot may still be away: Discord replays it on RESUME.
    during = await chat.post(thread_id, "[[reply:asked while away]] one more")
    await resumed
    assert dropped == [1]
    await chat.sent(thread_id, "survived the drop", posted.seq)
    await chat.sent(thread_id, "asked while away", during.seq)

    sent = world.bot_messages(thread_id)
    assert sent.count("survived the drop") == 1 and sent.count("asked while away") == 1
    assert len(world.profile.agent_log.asked("a long job")) == 1
    assert len(world.profile.agent_log.asked("one more")) == 1
    assert len([a for a in sandbox.actions if a.kind == "thread_created"]) == 1


async def test_rest_429_on_send_is_waited_out_and_the_reply_arrives_once(start_world: StartWorld) -> None:
    world = await start_world(CHANNELS)
    # The status line and the reply are each refused once with Discord's rate limit answer.
    world.sandbox.inject("POST", "/channels/*/messages", 429, count=2, retry_after=0.3)
    posted, thread_id = await world.ask("work", "[[reply:after the rate limit]] rate limited")
    await world.chat.sent(thread_id, "after the rate limit", posted.seq)

    assert world.sandbox.faults.pending == []
    assert world.bot_messages(thread_id).count("after the rate limit") == 1
    await world.still_serves("others", "others still served")


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_rest_5xx_on_send_is_retried_and_the_reply_arrives_once(start_world: StartWorld, status: int) -> None:
    world = await start_world(CHANNELS)
    # The run is over and its reply is the bot's next post in the thread: that post fails once.
    world.once(RunFinished, lambda e: world.sandbox.inject("POST", f"/channels/{e.thread_id}/messages", status))
    posted, thread_id = await world.ask("work", "[[reply:after the outage]] server trouble")
    await world.chat.sent(thread_id, "after the outage", posted.seq)

    assert world.sandbox.faults.pending == []
    assert world.bot_messages(thread_id).count("after the outage") == 1


async def test_refused_thread_creation_replies_in_the_channel(start_world: StartWorld) -> None:
    world = await start_world(CHANNELS)
    channel = world.channel("work")
    world.sandbox.refuse_threads(channel)
    posted = await world.chat.post(channel, "[[reply:answered in the channel]] no threads allowed")

    await world.chat.sent(channel, "answered in the channel", posted.seq)
    assert not [a for a in world.sandbox.actions if a.kind == "thread_created"]
    await world.still_serves("others", "others still served")


async def test_message_deleted_before_the_bot_acts_on_it_is_still_answered(start_world: StartWorld) -> None:
    world = await start_world(CHANNELS)
    channel = world.channel("work")

    def delete_on_arrival(event: Event) -> None:
        # Runs inside the gateway's handling, before it reacts or opens a thread.
        if isinstance(event, MessageReceived) and "delete me" in event.content:
            world.sandbox.delete_message(event.channel_id, event.message_id)

    world.runtime.bus.listen(delete_on_arrival)
    posted = await world.chat.post(channel, "[[reply:answered anyway]] delete me")

    # No message left to open a thread on: the answer goes to the channel.
    await world.chat.sent(channel, "answered anyway", posted.seq)
    assert world.bot_messages(channel, posted.seq).count("answered anyway") == 1
    assert not [a for a in world.sandbox.actions if a.kind == "thread_created"]
    await world.still_serves("others", "others still served")


async def test_message_deleted_while_claude_runs_is_answered_in_its_thread(start_world: StartWorld) -> None:
    world = await start_world(CHANNELS)
    channel = world.channel("work")
    # The thread's ID is the message's: delete the message the moment its run starts.
    world.once(RunStarted, lambda e: world.sandbox.delete_message(channel, e.thread_id))
    posted, thread_id = await world.ask("work", "[[reply:answer kept]] delete me later")

    await world.chat.sent(thread_id, "answer kept", posted.seq)
    deleted = [a for a in world.sandbox.actions if a.kind == "message_deleted" and a.message_id == posted.id]
    assert world.sandbox.messages(channel) == [] and deleted == []  # gone, and not by the bot


@pytest.mark.parametrize("locked", [False, True], ids=["archived", "archived-and-locked"])
async def test_thread_archived_while_claude_runs_still_gets_the_reply(start_world: StartWorld, locked: bool) -> None:
    world = await start_world(CHANNELS)
    world.once(RunStarted, lambda e: world.sandbox.archive(e.thread_id, locked=locked))
    posted, thread_id = await world.ask("work", "[[reply:answer after archive]] archive me")

    if locked:
        # A locked thread takes no posts: the reply goes to its channel, pointing at the thread.
        reply = await world.chat.sent_starting(world.channel("work"), f"<#{thread_id}>", posted.seq)
        assert reply.text.endswith("answer after archive")
    else:
        await world.chat.sent(thread_id, "answer after archive", posted.seq)
        assert world.sandbox.channel(thread_id)["thread_metadata"]["archived"] is False
    await world.still_serves("others", "others still served")


async def test_a_new_session_after_an_invalidated_one_catches_up_what_was_posted_meanwhile(
    start_world: StartWorld,
) -> None:
    world = await start_world(CHANNELS)
    chat, sandbox = world.chat, world.sandbox
    _, thread_id = await world.ask("work", "[[reply:before]] hello")
    await chat.sent(thread_id, "before", 0)
    caught_up = asyncio.ensure_future(world.runtime.bus.wait_for(CatchUpFinished, timeout=WAIT_S))
    assert sandbox.invalidate_sessions(resumable=False) == 1
    # The session is gone: Discord delivers nothing to the bot until it identifies again.
    missed = await chat.post(thread_id, "[[reply:caught after the new session]] posted in between")
    await chat.sent(thread_id, "caught after the new session", missed.seq)
    assert (await caught_up).places >= 2

    assert world.bot_messages(thread_id).count("caught after the new session") == 1
    assert len(world.profile.agent_log.asked("posted in between")) == 1
