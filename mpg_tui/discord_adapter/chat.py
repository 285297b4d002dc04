"""The core's :class:`~mpg_tui.core.ports.ChatPort`, implemented with discord.py.

Works from channel IDs alone (``PartialMessageable``), so replying in a thread never
depends on what happens to be in discord.py's cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import discord

from mpg_tui.core.ports import Attachment, ChatError, Embed, HistoryMessage

log = logging.getLogger(__name__)

TYPING_INTERVAL_S = 8.0  # Discord shows "typing" for ~10 s after each trigger.


def _chat_error(exc: discord.HTTPException, action: str) -> ChatError:
    return ChatError(f"Discord refused to {action}: {exc.status} {exc.text or exc}", status=exc.status)


class DiscordChat:
    def __init__(self, client: discord.Client) -> None:
        self._client = client

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
        try:
            thread = await channel.get_partial_message(int(message_id)).create_thread(
                name=name[:100] or "Claude response",
                auto_archive_duration=auto_archive_minutes,  # type: ignore[arg-type]
            )
        except discord.HTTPException as exc:
            raise _chat_error(exc, "create a thread") from exc
        return str(thread.id)

    async def send(self, channel_id: str, content: str | None = None, embed: Embed | None = None) -> str:
        try:
            if embed is not None:
                message = await self._channel(channel_id).send(content=content, embed=_to_discord_embed(embed))
            else:
                message = await self._channel(channel_id).send(content=content)
        except discord.HTTPException as exc:
            raise _chat_error(exc, "send a message") from exc
        return str(message.id)

    async def edit(self, channel_id: str, message_id: str, content: str) -> None:
        try:
            await self._message(channel_id, message_id).edit(content=content)
        except discord.HTTPException as exc:
            raise _chat_error(exc, "edit a message") from exc

    async def delete(self, channel_id: str, message_id: str) -> None:
        try:
            await self._message(channel_id, message_id).delete()
        except discord.NotFound:
            return
        except discord.HTTPException as exc:
            raise _chat_error(exc, "delete a message") from exc

    async def react(self, channel_id: str, message_id: str, emoji: str) -> None:
        try:
            await self._message(channel_id, message_id).add_reaction(emoji)
        except discord.HTTPException as exc:
            raise _chat_error(exc, "add a reaction") from exc

    @contextlib.asynccontextmanager
    async def typing(self, channel_id: str) -> AsyncIterator[None]:
        # Our own keeper rather than ``Messageable.typing()``: a failed typing call must never
        # surface as an error in the run it decorates.
        async def keep_typing() -> None:
            while True:
                try:
                    await self._client.http.send_typing(int(channel_id))
                except (discord.HTTPException, aiohttp.ClientError) as exc:
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
        try:
            async for message in self._channel(channel_id).history(limit=limit, before=marker):
                found.append(
                    HistoryMessage(
                        author=message.author.display_name,
                        content=message.content,
                        is_bot=message.author.bot,
                        embeds=tuple(_from_discord_embed(e) for e in message.embeds),
                    )
                )
        except discord.HTTPException as exc:
            raise _chat_error(exc, "read the thread history") from exc
        found.reverse()
        return found

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
