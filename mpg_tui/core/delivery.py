"""Posting a reply in a thread: agent embeds or 2000-character chunks, and where to go if the thread refuses.

A thread can be locked, deleted or closed to the bot while claude works on it; the answer
then goes to the thread's channel, led by a link to the thread, rather than being lost.

A reply never floods its thread: at most ``maxReplyMessages`` chunks are posted, and a
longer reply follows whole as a ``reply.md`` attachment (cut, with a note, at the
server's upload limit; the whole text stays in the session for the cockpit and the
dashboard). A 10 MB reply is six messages, not five thousand.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mpg_tui.config import Agent
from mpg_tui.core.chunking import EMBED_LIMIT, PLAIN_LIMIT, chunk_text
from mpg_tui.core.embeds import agent_embeds
from mpg_tui.core.ports import ChatError, ChatPort, Embed

log = logging.getLogger(__name__)

THREAD_REFUSED_STATUSES = frozenset({403, 404})
"""Statuses with which a thread refuses a post (locked, deleted, closed to the bot): post in its channel."""
DEFAULT_MAX_REPLY_MESSAGES = 5
REPLY_FILENAME = "reply.md"
_MB = 1024 * 1024


def attachment_note(length: int) -> str:
    return f"📎 The whole reply ({length:,} characters) is attached as `{REPLY_FILENAME}`."


def cut_note(size: int, limit: int) -> str:
    return (
        f"✂️ The reply is {size / _MB:.1f} MB, over this server's upload limit of {limit / _MB:.1f} MB: "
        f"`{REPLY_FILENAME}` is cut there. The whole text is in the cockpit and on the dashboard."
    )


def reply_file(text: str, limit: int) -> tuple[bytes, str | None]:
    """The attachment's bytes, cut to ``limit`` with a closing note when needed; and that note."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return data, None
    note = cut_note(len(data), limit)
    tail = f"\n\n{note}\n".encode()
    # Cut on a character boundary: a UTF-8 sequence cut in half would end the file in mojibake.
    head = data[: max(limit - len(tail), 0)].decode("utf-8", errors="ignore").encode("utf-8")
    return head + tail, note


class Delivery:
    """Posts through the chat port; chat failures are logged, never raised."""

    def __init__(self, chat: Callable[[], ChatPort], *, on_notice: Callable[[str, str], None] | None = None) -> None:
        self._chat = chat
        self._on_notice = on_notice
        """Told of every line of the gateway's own (``send``), for conversation views."""

    async def reply(
        self,
        thread_id: str,
        agent: Agent | None,
        text: str,
        *,
        parent: str | None = None,
        max_messages: int = DEFAULT_MAX_REPLY_MESSAGES,
    ) -> int:
        """Post claude's reply (agent embeds, or plain chunks); returns how many messages it took.

        Beyond ``max_messages`` chunks the whole reply follows as a file instead.
        """
        limit = EMBED_LIMIT if agent is not None else PLAIN_LIMIT
        # Only the head is cut into chunks: chunking 10 MB to post five pieces would be waste.
        head_size = (max_messages + 1) * limit
        head = text[:head_size]
        if agent is not None:
            pieces: list[tuple[str | None, Embed | None]] = [(None, e) for e in agent_embeds(agent, head)]
        else:
            pieces = [(chunk, None) for chunk in chunk_text(head)]
        overflow = len(text) > head_size or len(pieces) > max_messages
        for content, embed in pieces[:max_messages] if overflow else pieces:
            await self.deliver(thread_id, content, embed, parent)
        if not overflow:
            return len(pieces)
        await self.deliver_file(thread_id, text, parent)
        return max_messages + 1

    async def deliver_file(self, channel_id: str, text: str, parent: str | None) -> None:
        """Post ``text`` as ``reply.md``, where :meth:`deliver` would post a message."""
        target = channel_id
        for attempt in ("thread", "parent"):
            data, cut = reply_file(text, self._chat().upload_limit(target))
            note = attachment_note(len(text)) + (f"\n{cut}" if cut else "")
            if attempt == "parent":
                note = f"<#{channel_id}> {note}"
            try:
                await self._chat().send_file(target, REPLY_FILENAME, data, note)
                return
            except ChatError as exc:
                if attempt == "parent" or parent is None or parent == channel_id:
                    log.warning("could not post the reply file in %s: %s", target, exc)
                    return
                if exc.status not in THREAD_REFUSED_STATUSES:
                    log.warning("could not post the reply file in %s: %s", target, exc)
                    return
                log.warning("could not post in thread %s (%s); posting the file in its channel %s", target, exc, parent)
                target = parent

    async def send(self, channel_id: str, text: str, *, parent: str | None = None) -> None:
        if self._on_notice is not None:
            self._on_notice(channel_id, text)
        await self.deliver(channel_id, text, None, parent)

    async def deliver(self, channel_id: str, text: str | None, embed: Embed | None, parent: str | None) -> None:
        """Post in ``channel_id``; when that is a thread that refuses posts, post in ``parent`` instead.

        A thread can be locked, deleted or closed to the bot while claude works on it; the
        answer then goes to the thread's channel, led by a link to the thread, rather than
        being lost. Other failures are logged: the run's result is never lost for the rest.
        """
        try:
            await self._chat().send(channel_id, text, embed=embed)
            return
        except ChatError as exc:
            if parent is None or parent == channel_id or exc.status not in THREAD_REFUSED_STATUSES:
                log.warning("could not post in %s: %s", channel_id, exc)
                return
            log.warning("could not post in thread %s (%s); posting in its channel %s", channel_id, exc, parent)
        link = f"<#{channel_id}>"
        try:
            if embed is not None:
                await self._chat().send(parent, link, embed=embed)
            else:
                for piece in chunk_text(f"{link} {text or ''}"):
                    await self._chat().send(parent, piece)
        except ChatError as exc:
            log.warning("could not post in %s either: %s", parent, exc)
