"""Replies that cannot flood a thread: a chunk cap, then the whole reply as ``reply.md``."""

from __future__ import annotations

from mpg_tui.config import Agent
from mpg_tui.core.delivery import REPLY_FILENAME, Delivery
from mpg_tui.sandbox.inmemory import InMemoryChat

THREAD = "111"
CHANNEL = "100"
ENGINEER = Agent(name="engineer", role="Software Engineer", prompt="build")


def lines(total_chars: int) -> str:
    return "\n".join("x" * 79 for _ in range(total_chars // 80))


async def test_a_reply_within_the_cap_is_posted_as_chunks_and_no_file() -> None:
    chat = InMemoryChat()
    count = await Delivery(lambda: chat).reply(THREAD, None, lines(9_000), max_messages=5)
    assert count == 5
    assert all(p.filename is None for p in chat.posts)
    assert "".join(chat.texts(THREAD)).count("x") == lines(9_000).count("x")


async def test_a_10_mb_reply_takes_the_cap_of_chunks_and_one_file_with_all_of_it() -> None:
    chat = InMemoryChat()
    text = lines(10_000_000)
    count = await Delivery(lambda: chat).reply(THREAD, None, text, max_messages=5)

    assert count == 6 and len(chat.posts) == 6
    *chunks, attached = chat.posts
    assert all(p.filename is None and len(p.content or "") <= 2000 for p in chunks)
    assert attached.filename == REPLY_FILENAME
    assert attached.data.decode() == text
    assert "attached" in (attached.content or "")


async def test_agent_embeds_are_capped_the_same_way() -> None:
    chat = InMemoryChat()
    count = await Delivery(lambda: chat).reply(THREAD, ENGINEER, lines(100_000), max_messages=3)
    assert count == 4
    assert [p.embed is not None for p in chat.posts] == [True, True, True, False]
    assert chat.posts[-1].filename == REPLY_FILENAME


async def test_a_reply_over_the_upload_limit_is_cut_with_a_note_in_the_file_and_the_message() -> None:
    chat = InMemoryChat(upload_limit_bytes=50_000)
    text = "é" * 100_000  # two bytes each: the cut must not split one
    await Delivery(lambda: chat).reply(THREAD, None, text, max_messages=2)

    attached = chat.posts[-1]
    assert len(attached.data) <= 50_000
    body = attached.data.decode("utf-8")  # raises if a character was cut in half
    assert body.startswith("é" * 1000) and "upload limit" in body
    assert "upload limit" in (attached.content or "")


async def test_the_file_goes_to_the_channel_when_the_thread_refuses_posts() -> None:
    chat = InMemoryChat(refused={THREAD})
    await Delivery(lambda: chat).reply(THREAD, None, lines(20_000), parent=CHANNEL, max_messages=2)
    [attached] = [p for p in chat.posts if p.filename]
    assert attached.channel_id == CHANNEL
    assert (attached.content or "").startswith(f"<#{THREAD}>")
