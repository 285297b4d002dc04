"""The sandbox's records: channels, threads, messages, reactions and files, and Discord's limits on them.

Plain data the :class:`~.state.SandboxState` keeps and changes; the constants are the
numbers Discord uses (channel and message types, flags, size limits), and
:func:`validate_message` refuses what Discord would refuse, naming each field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mpg_tui.sandbox.discord import errors
from mpg_tui.sandbox.discord.spec import snowflake_time

CHANNEL_TEXT = 0
CHANNEL_PUBLIC_THREAD = 11
MESSAGE_DEFAULT = 0
MESSAGE_REPLY = 19
MESSAGE_FLAG_HAS_THREAD = 1 << 5
ARCHIVE_DURATIONS = frozenset({60, 1440, 4320, 10080})
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
EMBED_LIMITS = {"title": 256, "description": 4096}
MAX_FILE_BYTES = 25 * 1024 * 1024


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class SandboxFile:
    """A file a user attaches to a message posted through the sandbox."""

    filename: str
    data: bytes
    content_type: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class StoredFile:
    id: str
    filename: str
    content_type: str
    data: bytes
    description: str | None = None


@dataclass
class Reaction:
    emoji: dict[str, Any]
    users: list[str] = field(default_factory=list)


@dataclass
class MessageRecord:
    id: str
    channel_id: str
    author_id: str
    content: str
    embeds: list[dict[str, Any]]
    attachments: list[StoredFile]
    type: int = MESSAGE_DEFAULT
    reference: dict[str, Any] | None = None
    nonce: str | int | None = None
    tts: bool = False
    flags: int = 0
    edited_at: float | None = None
    thread_id: str | None = None
    reactions: dict[str, Reaction] = field(default_factory=dict)
    components: list[dict[str, Any]] = field(default_factory=list)
    """Action rows of buttons, as the bot sent them (clicked through the interactions)."""

    @property
    def created_at(self) -> float:
        return snowflake_time(self.id)


@dataclass
class ChannelRecord:
    """A text channel of the guild, or a public thread under one."""

    id: str
    name: str
    type: int
    parent_id: str | None = None
    owner_id: str | None = None
    topic: str | None = None
    position: int = 0
    archived: bool = False
    locked: bool = False
    auto_archive_duration: int = 1440
    archive_timestamp: float = 0.0
    total_message_sent: int = 0
    member_ids: list[str] = field(default_factory=list)
    messages: dict[str, MessageRecord] = field(default_factory=dict)
    refuse_threads: bool = False

    @property
    def is_thread(self) -> bool:
        return self.type == CHANNEL_PUBLIC_THREAD

    @property
    def last_message_id(self) -> str | None:
        return next(reversed(self.messages), None)


def parse_emoji(emoji: str) -> dict[str, Any]:
    """``👀`` -> a unicode emoji; ``name:id`` / ``a:name:id`` -> a custom one."""
    parts = emoji.split(":")
    if len(parts) >= 2 and parts[-1].isdigit():
        return {"id": parts[-1], "name": parts[-2] or None, "animated": parts[0] == "a" and len(parts) == 3}
    if not emoji:
        raise errors.ApiError(400, "Unknown Emoji", 10014)
    return {"id": None, "name": emoji}


def validate_message(content: Any, embeds: Any) -> None:
    """Discord's limits on what a message may carry; raises a 50035 naming each field."""
    problems: dict[str, tuple[str, str]] = {}
    if not isinstance(content, str):
        problems["content"] = ("BASE_TYPE_STRING", "Must be a string.")
    elif len(content) > MAX_CONTENT:
        problems.update([errors.max_length("content", MAX_CONTENT)])
    if not isinstance(embeds, list | tuple) or not all(isinstance(e, dict) for e in embeds):
        problems["embeds"] = ("BASE_TYPE_ARRAY", "Must be an array of embed objects.")
    elif len(embeds) > MAX_EMBEDS:
        problems["embeds"] = ("BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
    else:
        total = 0
        for i, embed in enumerate(embeds):
            for key, limit in EMBED_LIMITS.items():
                value = embed.get(key)
                if value is not None and len(str(value)) > limit:
                    problems.update([errors.max_length(f"embeds.{i}.{key}", limit)])
                total += len(str(value or ""))
            total += len(str((embed.get("author") or {}).get("name") or ""))
            total += len(str((embed.get("footer") or {}).get("text") or ""))
            for field_data in embed.get("fields") or []:
                total += len(str(field_data.get("name") or "")) + len(str(field_data.get("value") or ""))
        if total > MAX_EMBED_TOTAL and "embeds" not in problems:
            problems["embeds"] = ("MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    if problems:
        raise errors.invalid_form(problems)
