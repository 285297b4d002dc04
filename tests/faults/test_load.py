"""A burst: 200 messages across 50 threads, every one answered exactly once, in order per thread.

A whole gateway in this process against its own sandbox and the stand-in claude. 50
messages land in the channel at once (each opens a thread); as soon as a thread exists,
three follow-ups are posted in it, while its first message is still queued or running.
Every run reports a tool step, so each gets a status line; none may be left behind.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter

from tests.faults.conftest import StartWorld, World

THREADS = 50
FOLLOW_UPS = 3
WORKS = "[[tool:Read:notes.md]]"
"""A tool step at once: every run posts a status line."""


async def thread_of_burst(world: World, first_seq_posted: tuple[str, int], index: int) -> tuple[str, list[str]]:
    """Wait for message ``index``'s thread and post its follow-ups; the thread and its expected replies."""
    message_id, seq = first_seq_posted
    action = await world.chat.wait(lambda a: a.kind == "thread_created" and a.message_id == message_id, seq)
    thread_id = str(action.payload["id"])
    for n in range(1, FOLLOW_UPS + 1):
        await world.chat.post(thread_id, f"{WORKS} [[reply:t{index}-m{n}]] follow-up {n} of {index}")
    return thread_id, [f"t{index}-m{n}" for n in range(FOLLOW_UPS + 1)]


async def test_a_burst_of_200_messages_across_50_threads_is_answered_once_each_in_order_and_leaves_no_status_line(
    start_world: StartWorld,
) -> None:
    world = await start_world({"busy": {}}, defaults={"maxConcurrentSessions": 8})
    channel = world.channel("busy")
    firsts = []
    for index in range(THREADS):
        posted = await world.chat.post(channel, f"{WORKS} [[reply:t{index}-m0]] opening {index}")
        firsts.append((posted.id, posted.seq))
    threads = await asyncio.gather(*(thread_of_burst(world, first, i) for i, first in enumerate(firsts)))

    for thread_id, expected in threads:
        await world.chat.sent(thread_id, expected[-1], 0)
    for thread_id, expected in threads:
        replies = [text for text in world.bot_messages(thread_id) if text in expected]
        assert replies == expected, f"thread {thread_id}: {replies}"
    everything = Counter(world.bot_messages(channel) + [t for tid, _ in threads for t in world.bot_messages(tid)])
    assert all(everything[reply] == 1 for _, expected in threads for reply in expected)
    assert len(world.profile.agent_log.invocations()) == THREADS * (FOLLOW_UPS + 1)
    statuses = [a for tid, _ in threads for a in world.chat.actions_in(tid) if a.text.startswith("⚙️")]
    assert statuses, "no run posted a status line: the test would prove nothing"
    left = [m["content"] for tid, _ in threads for m in world.sandbox.messages(tid) if m["content"].startswith("⚙️")]
    assert left == []


async def test_the_heap_built_at_start_up_is_kept_out_of_full_collections_while_the_gateway_serves(
    start_world: StartWorld,
) -> None:
    before = gc.get_freeze_count()
    world = await start_world({"busy": {}})
    assert gc.get_freeze_count() > before  # modules, config, sessions: not walked by every full collection
    posted = await world.chat.post(world.channel("busy"), "[[reply:still-answers]] hello")
    await world.chat.wait(lambda a: a.kind == "message_sent" and a.text == "still-answers", posted.seq)
