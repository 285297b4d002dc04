"""No "⚙️ … is working" status line outlives its run, whatever Discord does to those calls.

Each test runs a whole gateway in this process against its own sandbox. The sandbox holds
the status line's ``POST`` in flight until the run is over, or fails its ``DELETE``; the
thread must end up with the reply and no status line.
"""

from __future__ import annotations

from mpg_tui.core.events import RunFinished
from tests.e2e.gateway_process import WAIT_S
from tests.faults.conftest import Channels, StartWorld, World

CHANNELS: Channels = {"work": {}}
STATUS_PREFIX = "⚙️"
# The stand-in reports a tool step at once: the status line is posted as the run starts.
WORKS = "[[tool:Read:notes.md]] [[sleep:0.4]]"


def status_lines(world: World, channel_id: str) -> list[str]:
    """Status messages still in a channel, as the sandbox holds it now."""
    return [m["content"] for m in world.sandbox.messages(channel_id) if m["content"].startswith(STATUS_PREFIX)]


async def test_a_status_line_still_being_posted_when_the_run_ends_is_deleted_once_it_exists(
    start_world: StartWorld,
) -> None:
    world = await start_world(CHANNELS)
    held = world.sandbox.hold("POST", "/channels/*/messages", content_prefix=STATUS_PREFIX)
    finished = world.runtime.bus.wait_for(RunFinished, timeout=WAIT_S)
    posted, thread_id = await world.ask("work", f"{WORKS} [[reply:done despite a slow status]] slow status")
    await finished
    assert held.held == 1  # the status line's POST was on its way while the run ended
    held.release()

    await world.chat.sent(thread_id, "done despite a slow status", posted.seq)
    created = [a for a in world.chat.actions_in(thread_id) if a.kind == "message_sent" and a.text.startswith("⚙️")]
    assert len(created) == 1
    deleted = [a for a in world.chat.actions_in(thread_id) if a.kind == "message_deleted"]
    assert [a.message_id for a in deleted] == [created[0].message_id]
    assert status_lines(world, thread_id) == []


async def test_a_status_line_whose_delete_fails_for_a_moment_is_deleted_on_retry(start_world: StartWorld) -> None:
    world = await start_world(CHANNELS)
    # discord.py does not retry a 503; the status line's own clean-up must.
    world.sandbox.inject("DELETE", "/channels/*/messages/*", 503)
    posted, thread_id = await world.ask("work", f"{WORKS} [[reply:done despite a failed delete]] flaky delete")
    await world.chat.sent(thread_id, "done despite a failed delete", posted.seq)

    assert world.sandbox.faults.pending == []  # the DELETE did fail once
    assert status_lines(world, thread_id) == []


async def test_a_status_line_whose_post_is_slow_and_fails_once_is_posted_once_and_deleted(
    start_world: StartWorld,
) -> None:
    world = await start_world(CHANNELS)
    held = world.sandbox.hold("POST", "/channels/*/messages", content_prefix=STATUS_PREFIX)
    finished = world.runtime.bus.wait_for(RunFinished, timeout=WAIT_S)
    posted, thread_id = await world.ask("work", f"{WORKS} [[reply:done despite a failed status]] failing status")
    await finished
    # The held POST is answered 503 when released; the adapter sends it again (same nonce).
    world.sandbox.inject("POST", f"/channels/{thread_id}/messages", 503)
    held.release()

    await world.chat.sent(thread_id, "done despite a failed status", posted.seq)
    assert world.sandbox.faults.pending == []
    created = [a for a in world.chat.actions_in(thread_id) if a.kind == "message_sent" and a.text.startswith("⚙️")]
    assert len(created) == 1
    assert status_lines(world, thread_id) == []
