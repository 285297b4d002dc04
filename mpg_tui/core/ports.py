"""The transport-neutral edge of the core: messages in, chat operations out.

The Discord adapter turns discord.py objects into :class:`InboundMessage` and subclasses
:class:`ChatPort`; tests and the sandbox subclass it in memory. Nothing here imports discord.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


class ChatError(Exception):
    """A chat operation failed (refused, not found, rate limited past retries, ...)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Attachment:
    url: str
    filename: str
    size: int
    content_type: str | None


@dataclass(frozen=True)
class InboundMessage:
    id: str
    channel_id: str
    """Where it was posted: a main channel, or a thread."""
    author_id: str
    author_name: str
    content: str
    parent_channel_id: str | None = None
    """Set when ``channel_id`` is a thread: the channel the thread belongs to."""
    guild_id: str | None = None
    author_is_bot: bool = False
    role_ids: tuple[str, ...] = ()
    role_names: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    created_at: float = 0.0

    @property
    def in_thread(self) -> bool:
        return self.parent_channel_id is not None

    @property
    def project_channel_id(self) -> str:
        return self.parent_channel_id or self.channel_id


@dataclass(frozen=True)
class Embed:
    description: str
    author: str | None = None
    color: int | None = None
    title: str | None = None
    footer: str | None = None


@dataclass(frozen=True)
class HistoryMessage:
    author: str
    content: str
    is_bot: bool = False
    embeds: tuple[Embed, ...] = field(default=())


DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
"""Discord's upload limit for a guild without boosts (10 MiB)."""


@dataclass(frozen=True)
class CardChoice:
    """One button of a card: ``value`` comes back with the click."""

    value: str
    label: str
    style: Literal["allow", "deny", "neutral"] = "neutral"
    row: int = 0


@dataclass(frozen=True)
class ApprovalCard:
    """A request for a person, as chat shows it: text and buttons tied to ``request_id``."""

    request_id: str
    """Random; the chat adapter puts it in each button's ID and gives it back with a click."""
    text: str
    choices: tuple[CardChoice, ...]


@dataclass(frozen=True)
class CardClick:
    """A member pressed a card's button."""

    request_id: str
    value: str
    member_id: str
    member_name: str
    role_ids: tuple[str, ...] = ()
    role_names: tuple[str, ...] = ()


class ChatPort(ABC):
    """What the core does in chat. Every method raises :class:`ChatError` when it fails."""

    @abstractmethod
    async def create_thread(self, channel_id: str, message_id: str, name: str, auto_archive_minutes: int = 1440) -> str:
        """Open a thread on a message; returns the thread's channel id."""

    @abstractmethod
    async def send(self, channel_id: str, content: str | None = None, embed: Embed | None = None) -> str:
        """Post a message; returns its id."""

    @abstractmethod
    async def edit(self, channel_id: str, message_id: str, content: str) -> None: ...

    @abstractmethod
    async def delete(self, channel_id: str, message_id: str) -> None: ...

    @abstractmethod
    async def react(self, channel_id: str, message_id: str, emoji: str) -> None: ...

    @abstractmethod
    def typing(self, channel_id: str) -> AbstractAsyncContextManager[None]:
        """Keep the typing indicator alive for as long as the context is open."""

    @abstractmethod
    async def history(self, channel_id: str, limit: int, before: str | None = None) -> list[HistoryMessage]:
        """Up to ``limit`` messages before ``before``, oldest first."""

    @abstractmethod
    async def download(self, attachment: Attachment, dest: Path) -> None: ...

    @abstractmethod
    async def send_file(self, channel_id: str, filename: str, data: bytes, content: str | None = None) -> str:
        """Post a message with one file attached; returns its id."""

    @abstractmethod
    def upload_limit(self, channel_id: str) -> int:
        """The largest file, in bytes, that may be attached to a message in ``channel_id``."""

    @abstractmethod
    async def recent_messages(self, channel_id: str, limit: int, after: str | None = None) -> list[InboundMessage]:
        """The newest ``limit`` messages posted after message ``after`` (all when None), oldest first.

        Messages of every author are returned (bots too), as :class:`InboundMessage`; for a
        thread, ``parent_channel_id`` may be unknown to the adapter and left None.
        """

    @abstractmethod
    async def post_card(self, channel_id: str, card: ApprovalCard) -> str:
        """Post a request with its buttons; returns the message's id."""

    @abstractmethod
    async def close_card(self, channel_id: str, message_id: str, card: ApprovalCard, verdict: str) -> None:
        """Edit a posted card to say how it was settled, its buttons disabled."""
