"""The core's :class:`~mpg_tui.core.ports.ChatPort`, implemented with discord.py.

Works from channel IDs alone (``PartialMessageable``), so replying in a thread never
depends on what happens to be in discord.py's cache. Every way a call can fail (Discord
refusing it, the network, a client already closed by shutdown) reaches the core as a
:class:`~mpg_tui.core.ports.ChatError`, as the port promises.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import aiohttp
import discord

from mpg_tui.core.ports import (
    DEFAULT_UPLOAD_LIMIT,
    ApprovalCard,
    Attachment,
    ChatError,
    ChatPort,
    Embed,
    HistoryMessage,
    InboundMessage,
)
from mpg_tui.discord_adapter.cards import build_view

log = logging.getLogger(__name__)

TYPING_INTERVAL_S = 8.0  # Discord shows "typing" for ~10 s after each trigger.
SEND_RETRY_DELAYS_S = (1.0, 3.0)
"""Pauses before sending a message again after a transient failure (``DiscordChat._worth_retrying``)."""
# discord.py retries these itself, five times; a send that still fails after that is not retried again.
_RETRIED_BY_DISCORD_PY = frozenset({500, 502, 504, 524})


def to_inbound(message: discord.Message) -> InboundMessage:
    channel = message.channel
    parent_id = str(channel.parent_id) if isinstance(channel, discord.Thread) and channel.parent_id else None
    roles = [r for r in getattr(message.author, "roles", []) if not r.is_default()]
    return InboundMessage(
        id=str(message.id),
        channel_id=str(channel.id),
        parent_channel_id=parent_id,
        guild_id=str(message.guild.id) if message.guild else None,
        author_id=str(message.author.id),
        author_name=message.author.display_name,
        author_is_bot=message.author.bot,
        content=message.content,
        role_ids=tuple(str(r.id) for r in roles),
        role_names=tuple(r.name for r in roles),
        attachments=tuple(
            Attachment(url=a.url, filename=a.filename, size=a.size, content_type=a.content_type)
            for a in message.attachments
        ),
        created_at=message.created_at.timestamp(),
    )


def _chat_error(exc: discord.HTTPException, action: str) -> ChatError:
    return ChatError(f"Discord refused to {action}: {exc.status} {exc.text or exc}", status=exc.status)


class DiscordChat(ChatPort):
    def __init__(self, client: discord.Client, *, send_retry_delays_s: Sequence[float] = SEND_RETRY_DELAYS_S) -> None:
        self._client = client
        self._send_retry_delays_s = tuple(send_retry_delays_s)

    @contextlib.contextmanager
    def _failures_as_chat_error(self, action: str) -> Iterator[None]:
        if self._client.is_closed():
            raise ChatError(f"cannot {action}: the Discord client is closed")
        try:
            yield
        except discord.HTTPException as exc:
            raise _chat_error(exc, action) from exc
        except (aiohttp.ClientError, OSError) as exc:  # OSError includes timeouts
            raise ChatError(f"could not reach Discord to {action}: {exc}") from exc
        except RuntimeError as exc:
            # aiohttp's "Session is closed": shutdown closed the client while this call was
            # on its way (a run's clean-up racing the close). Any other RuntimeError is a bug.
            if not self._client.is_closed():
                raise
            raise ChatError(f"cannot {action}: the Discord client is closed") from exc

    def _channel(self, channel_id: str) -> discord.PartialMessageable:
        channel = self._client.get_channel(int(channel_id))
        guild_id = getattr(getattr(channel, "guild", None), "id", None)
        return self._client.get_partial_messageable(int(channel_id), guild_id=guild_id)

    def _message(self, channel_id: str, message_id: str) -> discord.PartialMessage:
        return self._channel(channel_id).get_partial_message(int(message_id))

    async def create_thread(self, channel_id: str, message_id: str, name: str, auto_archive_minutes: int = 1440) -> str:
        channel = self._client.get_channel(int(channel_id))
        if not isinstance(channel, discord.TextChannel):
            raise ChatError(f"channel {channel_id} is not a text channel the bot can see")
        with self._failures_as_chat_error("create a thread"):
            thread = await channel.get_partial_message(int(message_id)).create_thread(
                name=name[:100] or "Claude response",
                auto_archive_duration=auto_archive_minutes,  # type: ignore[arg-type]
            )
        return str(thread.id)

    async def send(self, channel_id: str, content: str | None = None, embed: Embed | None = None) -> str:
        """Post a message; a transient failure is retried (a reply must not be lost to a blip).

        Every attempt carries the same nonce, which discord.py sends with ``enforce_nonce``:
        if an attempt that seemed to fail did reach Discord, the next one does not post twice.
        """

        async def attempt(channel: discord.PartialMessageable, nonce: int) -> discord.Message:
            if embed is not None:
                return await channel.send(content=content, embed=_to_discord_embed(embed), nonce=nonce)
            return await channel.send(content=content, nonce=nonce)

        return await self._send_retrying(channel_id, attempt)

    async def send_file(self, channel_id: str, filename: str, data: bytes, content: str | None = None) -> str:
        async def attempt(channel: discord.PartialMessageable, nonce: int) -> discord.Message:
            # A fresh File each attempt: an attempt reads the one it is given to the end.
            return await channel.send(content=content, file=discord.File(io.BytesIO(data), filename), nonce=nonce)

        return await self._send_retrying(channel_id, attempt)

    async def _send_retrying(
        self, channel_id: str, attempt: Callable[[discord.PartialMessageable, int], Awaitable[discord.Message]]
    ) -> str:
        nonce = secrets.randbits(64)
        for delay in (*self._send_retry_delays_s, None):
            try:
                with self._failures_as_chat_error("send a message"):
                    message = await attempt(self._channel(channel_id), nonce)
                return str(message.id)
            except ChatError as exc:
                if delay is None or not self._worth_retrying(exc):
                    raise
                log.warning("sending a message in %s failed (%s); trying again in %gs", channel_id, exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def upload_limit(self, channel_id: str) -> int:
        guild = getattr(self._client.get_channel(int(channel_id)), "guild", None)
        return guild.filesize_limit if isinstance(guild, discord.Guild) else DEFAULT_UPLOAD_LIMIT

    async def recent_messages(self, channel_id: str, limit: int, after: str | None = None) -> list[InboundMessage]:
        # Newest first, stopping at ``after``: what a catch-up needs is the newest messages.
        channel = self._client.get_channel(int(channel_id))
        source = channel if isinstance(channel, discord.TextChannel | discord.Thread) else self._channel(channel_id)
        newest_first: list[InboundMessage] = []
        with self._failures_as_chat_error("read the channel history"):
            async for message in source.history(limit=limit):
                if after is not None and message.id <= int(after):
                    break
                if message.type in (discord.MessageType.default, discord.MessageType.reply):
                    newest_first.append(to_inbound(message))
        newest_first.reverse()
        return newest_first

    def _worth_retrying(self, exc: ChatError) -> bool:
        """A server error discord.py did not retry (503), or a connection that failed; not a refusal."""
        if self._client.is_closed():
            return False
        if exc.status is None:
            return True
        return exc.status >= 500 and exc.status not in _RETRIED_BY_DISCORD_PY

    async def edit(self, channel_id: str, message_id: str, content: str) -> None:
        with self._failures_as_chat_error("edit a message"):
            await self._message(channel_id, message_id).edit(content=content)

    async def delete(self, channel_id: str, message_id: str) -> None:
        # Already gone is as good as deleted.
        with self._failures_as_chat_error("delete a message"), contextlib.suppress(discord.NotFound):
            await self._message(channel_id, message_id).delete()

    async def react(self, channel_id: str, message_id: str, emoji: str) -> None:
        with self._failures_as_chat_error("add a reaction"):
            await self._message(channel_id, message_id).add_reaction(emoji)

    @contextlib.asynccontextmanager
    async def typing(self, channel_id: str) -> AsyncIterator[None]:
        # Our own keeper rather than ``Messageable.typing()``: a failed typing call must never
        # surface as an error in the run it decorates.
        async def keep_typing() -> None:
            while not self._client.is_closed():
                try:
                    await self._client.http.send_typing(int(channel_id))
                except Exception as exc:  # the indicator is cosmetic: whatever happens, keep quiet
                    log.debug("typing indicator failed in %s: %s", channel_id, exc)
                await asyncio.sleep(TYPING_INTERVAL_S)

        task = asyncio.create_task(keep_typing())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def history(self, channel_id: str, limit: int, before: str | None = None) -> list[HistoryMessage]:
        marker = discord.Object(int(before)) if before else None
        found: list[HistoryMessage] = []
        with self._failures_as_chat_error("read the thread history"):
            async for message in self._channel(channel_id).history(limit=limit, before=marker):
                found.append(
                    HistoryMessage(
                        author=message.author.display_name,
                        content=message.content,
                        is_bot=message.author.bot,
                        embeds=tuple(_from_discord_embed(e) for e in message.embeds),
                    )
                )
        found.reverse()
        return found

    async def post_card(self, channel_id: str, card: ApprovalCard) -> str:
        with self._failures_as_chat_error("post an approval request"):
            message = await self._channel(channel_id).send(content=card.text[:2000], view=build_view(card))
        return str(message.id)

    async def close_card(self, channel_id: str, message_id: str, card: ApprovalCard, verdict: str) -> None:
        text = f"{card.text}\n\n**{verdict}**"
        if len(text) > 2000:
            text = f"{card.text[: 2000 - len(verdict) - 10]}…\n\n**{verdict}**"
        with self._failures_as_chat_error("close an approval request"):
            await self._message(channel_id, message_id).edit(content=text, view=build_view(card, disabled=True))

    async def download(self, attachment: Attachment, dest: Path) -> None:
        timeout = aiohttp.ClientTimeout(total=120)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(attachment.url) as response,
            ):
                if response.status != 200:
                    raise ChatError(f"download of {attachment.filename} failed: HTTP {response.status}")
                limit = max(attachment.size, 1)
                written = 0
                with dest.open("wb") as out:
                    async for block in response.content.iter_chunked(64 * 1024):
                        written += len(block)
                        if written > limit:
                            raise ChatError(f"{attachment.filename} is larger than Discord said it was")
                        out.write(block)
        except aiohttp.ClientError as exc:
            raise ChatError(f"download of {attachment.filename} failed: {exc}") from exc


def _to_discord_embed(embed: Embed) -> discord.Embed:
    out = discord.Embed(description=embed.description, title=embed.title, color=embed.color)
    if embed.author:
        out.set_author(name=embed.author)
    if embed.footer:
        out.set_footer(text=embed.footer)
    return out


def _from_discord_embed(embed: discord.Embed) -> Embed:
    return Embed(
        description=embed.description or "",
        author=embed.author.name if embed.author else None,
        color=embed.color.value if embed.color else None,
        title=embed.title,
        footer=embed.footer.text if embed.footer else None,
    )
