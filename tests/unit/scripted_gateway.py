"""A chat that records what the gateway posts, for tests of the real Gateway over a scripted runner."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from mpg_tui.core.ports import Attachment, ChatPort, Embed, HistoryMessage

WAIT_S = 10.0


class RecordingChat(ChatPort):
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    async def create_thread(self, channel_id: str, message_id: str, name: str, auto_archive_minutes: int = 1440) -> str:
        return message_id

    async def send(self, channel_id: str, content: str | None = None, embed: Embed | None = None) -> str:
        self.sent.append((channel_id, content or (embed.description if embed else "")))
        self.changed.set()
        return str(len(self.sent))

    async def edit(self, channel_id: str, message_id: str, content: str) -> None:
        return None

    async def delete(self, channel_id: str, message_id: str) -> None:
        return None

    async def react(self, channel_id: str, message_id: str, emoji: str) -> None:
        return None

    @contextlib.asynccontextmanager
    async def typing(self, channel_id: str) -> AsyncIterator[None]:
        yield

    async def history(self, channel_id: str, limit: int, before: str | None = None) -> list[HistoryMessage]:
        return []

    async def download(self, attachment: Attachment, dest: Path) -> None:
        return None

    def texts(self, channel_id: str) -> list[str]:
        return [text for where, text in self.sent if where == channel_id]

    async def until(self, needle: str, channel_id: str) -> str:
        async with asyncio.timeout(WAIT_S):
            while True:
                found = [t for t in self.texts(channel_id) if needle in t]
                if found:
                    return found[-1]
                self.changed.clear()
                await self.changed.wait()
