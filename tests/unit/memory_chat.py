"""An in-memory :class:`~mpg_tui.core.ports.ChatPort` for unit tests of delivery, the journal and catch-up."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(frozen=True)
class Posted:
    channel_id: str
    content: str | None
    embed: Embed | None = None
    filename: str | None = None
    data: bytes = b""


@dataclass
class MemoryChat(ChatPort):
    """Keeps what is posted; ``channels`` holds what users posted, for :meth:`recent_messages`."""

    posts: list[Posted] = field(default_factory=list)
    channels: dict[str, list[InboundMessage]] = field(default_factory=dict)
    limit: int = DEFAULT_UPLOAD_LIMIT
    refused: set[str] = field(default_factory=set)
    """Channels whose posts are refused with a 403 (a locked thread)."""
    reads: list[tuple[str, str | None]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(900_000_000_000_000_000))

    def _post(self, posted: Posted) -> str:
        if posted.channel_id in self.refused:
            raise ChatError("Missing Permissions", status=403)
        self.posts.append(posted)
        return str(next(self._ids))

    def texts(self, channel_id: str) -> list[str]:
        return [p.content or (p.embed.description if p.embed else "") for p in self.posts if p.channel_id == channel_id]

    async def create_thread(self, channel_id: str, message_id: str, name: str, auto_archive_minutes: int = 1440) -> str:
        return message_id

    async def send(self, channel_id: str, content: str | None = None, embed: Embed | None = None) -> str:
        return self._post(Posted(channel_id, content, embed))

    async def send_file(self, channel_id: str, filename: str, data: bytes, content: str | None = None) -> str:
        return self._post(Posted(channel_id, content, filename=filename, data=data))

    def upload_limit(self, channel_id: str) -> int:
        return self.limit

    async def post_card(self, channel_id: str, card: ApprovalCard) -> str:
        return self._post(Posted(channel_id, card.text))

    async def close_card(self, channel_id: str, message_id: str, card: ApprovalCard, verdict: str) -> None:
        return None

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
        raise ChatError("no attachments here")

    async def recent_messages(self, channel_id: str, limit: int, after: str | None = None) -> list[InboundMessage]:
        self.reads.append((channel_id, after))
        found = [m for m in self.channels.get(channel_id, []) if after is None or int(m.id) > int(after)]
        return found[-limit:]
