"""The sandbox's world: channels, threads, messages, reactions and files, as Discord renders them.

:class:`SandboxState` holds the records and does every change the REST routes and the
control API ask for; each change raises :class:`~.errors.ApiError` when Discord would
refuse it, and hands the resulting gateway event to an :class:`EventSink` (the gateway).
Objects come out in Discord's JSON shapes: string snowflakes, ISO timestamps, the fields
discord.py 2.7 reads. Nothing here does I/O.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

from mpg_tui.core.clock import Clock
from mpg_tui.sandbox.discord import errors
from mpg_tui.sandbox.discord.spec import SandboxSpec, SnowflakeFactory, UserSpec, snowflake_time

log = logging.getLogger(__name__)

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

_APPLICATION_FLAGS = {"presences": 1 << 13, "members": 1 << 15, "message_content": 1 << 19}
_USER_MENTION = re.compile(r"<@!?([0-9]+)>")
_ROLE_MENTION = re.compile(r"<@&([0-9]+)>")


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


class EventSink(Protocol):
    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Deliver a gateway DISPATCH event to every session that should see it."""


class _NoSink:
    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        log.debug("no gateway attached; dropping %s", event)


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


class SandboxState:
    def __init__(self, spec: SandboxSpec, clock: Clock) -> None:
        self.spec = spec
        self.clock = clock
        self.ids = SnowflakeFactory(clock)
        self.sink: EventSink = _NoSink()
        self.base_url = "http://127.0.0.1"
        """Where attachments are served; the server sets it once it knows its port."""
        self.started_at = clock.now()
        self.users: dict[str, UserSpec] = {u.id: u for u in (*spec.users, spec.bot)}
        self.channels: dict[str, ChannelRecord] = {
            c.id: ChannelRecord(id=c.id, name=c.name, type=CHANNEL_TEXT, topic=c.topic, position=i)
            for i, c in enumerate(spec.channels)
        }
        self.files: dict[str, StoredFile] = {}

    @property
    def bot_id(self) -> str:
        return self.spec.bot.id

    @property
    def guild_id(self) -> str:
        return self.spec.guild.id

    # -- look-ups -------------------------------------------------------------------------

    def channel(self, channel_id: str) -> ChannelRecord:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise errors.unknown_channel() from None

    def message(self, channel_id: str, message_id: str) -> MessageRecord:
        try:
            return self.channel(channel_id).messages[message_id]
        except KeyError:
            raise errors.unknown_message() from None

    def user(self, user_id: str) -> UserSpec:
        try:
            return self.users[user_id]
        except KeyError:
            raise errors.unknown_user() from None

    def threads_of(self, parent_id: str) -> list[ChannelRecord]:
        return [c for c in self.channels.values() if c.parent_id == parent_id]

    # -- JSON shapes ----------------------------------------------------------------------

    def user_json(self, user_id: str) -> dict[str, Any]:
        user = self.user(user_id)
        data: dict[str, Any] = {
            "id": user.id,
            "username": user.username,
            "discriminator": "0",
            "global_name": user.global_name if not user.bot else None,
            "avatar": None,
            "avatar_decoration_data": None,
            "banner": None,
            "accent_color": None,
            "public_flags": 0,
            "flags": 0,
            "primary_guild": None,
            "collectibles": None,
        }
        if user.bot:
            data["bot"] = True
        return data

    def me_json(self) -> dict[str, Any]:
        return {
            **self.user_json(self.bot_id),
            "verified": True,
            "mfa_enabled": False,
            "email": None,
            "locale": "en-US",
            "bio": "",
        }

    def application_flags(self) -> int:
        """The ``GATEWAY_*_LIMITED`` flags of the privileged intents the bot has enabled."""
        enabled = self.spec.privileged_intents
        return sum(bit for name, bit in _APPLICATION_FLAGS.items() if name in enabled)

    def application_json(self) -> dict[str, Any]:
        owner = self.spec.users[0].id if self.spec.users else self.bot_id
        return {
            "id": self.bot_id,
            "name": self.spec.bot.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": self.application_flags(),
            "owner": self.user_json(owner),
            "team": None,
            "bot": self.user_json(self.bot_id),
            "redirect_uris": [],
            "tags": [],
            "approximate_guild_count": 1,
            "interactions_endpoint_url": None,
            "integration_types_config": {"0": {}},
        }

    def member_json(self, user_id: str, *, with_user: bool = True) -> dict[str, Any]:
        user = self.user(user_id)
        data: dict[str, Any] = {
            "roles": list(user.roles),
            "nick": None,
            "avatar": None,
            "banner": None,
            "joined_at": iso(self.started_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user_json(user_id)
        return data

    def roles_json(self) -> list[dict[str, Any]]:
        everyone = {"id": self.guild_id, "name": "@everyone", "permissions": self.spec.everyone_permissions, "color": 0}
        roles = [everyone] + [
            {"id": r.id, "name": r.name, "permissions": r.permissions, "color": r.color} for r in self.spec.roles
        ]
        return [
            {
                "id": r["id"],
                "name": r["name"],
                "color": r["color"],
                "colors": {"primary_color": r["color"], "secondary_color": None, "tertiary_color": None},
                "hoist": False,
                "icon": None,
                "unicode_emoji": None,
                "position": position,
                "permissions": str(r["permissions"]),
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }
            for position, r in enumerate(roles)
        ]

    def channel_json(self, channel: ChannelRecord, *, with_guild_id: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": channel.id,
            "type": channel.type,
            "name": channel.name,
            "last_message_id": channel.last_message_id,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        if with_guild_id:
            data["guild_id"] = self.guild_id
        if channel.is_thread:
            data.update(
                parent_id=channel.parent_id,
                owner_id=channel.owner_id,
                message_count=len(channel.messages),
                total_message_sent=channel.total_message_sent,
                member_count=len(channel.member_ids),
                thread_metadata={
                    "archived": channel.archived,
                    "auto_archive_duration": channel.auto_archive_duration,
                    "archive_timestamp": iso(channel.archive_timestamp),
                    "locked": channel.locked,
                    "create_timestamp": iso(snowflake_time(channel.id)),
                },
            )
        else:
            data.update(
                parent_id=None,
                position=channel.position,
                permission_overwrites=[],
                topic=channel.topic,
                nsfw=False,
                default_auto_archive_duration=1440,
                default_thread_rate_limit_per_user=0,
            )
        return data

    def thread_member_json(self, thread: ChannelRecord, user_id: str) -> dict[str, Any]:
        return {"id": thread.id, "user_id": user_id, "join_timestamp": iso(snowflake_time(thread.id)), "flags": 1}

    def guild_json(self) -> dict[str, Any]:
        return {
            "id": self.guild_id,
            "name": self.spec.guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": self.spec.users[0].id if self.spec.users else self.bot_id,
            "region": "deprecated",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "roles": self.roles_json(),
            "emojis": [],
            "stickers": [],
        }

    def guild_create_json(self, *, with_members: bool) -> dict[str, Any]:
        """GUILD_CREATE as sent after READY.

        Without the members intent only the bot's own member is sent, as Discord does;
        ``member_count`` stays the true count (the client does not chunk without the intent).
        With it, every member is sent and ``member_count`` equals their number, so the
        guild counts as chunked and discord.py does not ask for more.
        """
        everyone = [*self.spec.users, self.spec.bot]
        members = [self.member_json(u.id) for u in (everyone if with_members else [self.spec.bot])]
        return {
            **self.guild_json(),
            "joined_at": iso(self.started_at),
            "large": False,
            "unavailable": False,
            "member_count": len(everyone),
            "members": members,
            "channels": [self.channel_json(c, with_guild_id=False) for c in self.channels.values() if not c.is_thread],
            "threads": [self.channel_json(c) for c in self.channels.values() if c.is_thread and not c.archived],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
        }

    def file_url(self, stored: StoredFile) -> str:
        return f"{self.base_url}/_sandbox/attachments/{stored.id}/{quote(stored.filename)}"

    def attachment_json(self, stored: StoredFile) -> dict[str, Any]:
        url = self.file_url(stored)
        data: dict[str, Any] = {
            "id": stored.id,
            "filename": stored.filename,
            "size": len(stored.data),
            "url": url,
            "proxy_url": url,
            "content_type": stored.content_type,
            "flags": 0,
        }
        if stored.description:
            data["description"] = stored.description
        return data

    def message_json(self, msg: MessageRecord, *, nested: bool = False) -> dict[str, Any]:
        """A message as the REST API returns it (no ``guild_id``/``member``: those are gateway extras)."""
        mention_ids = [uid for uid in dict.fromkeys(_USER_MENTION.findall(msg.content)) if uid in self.users]
        role_ids = {r.id for r in self.spec.roles}
        data: dict[str, Any] = {
            "id": msg.id,
            "channel_id": msg.channel_id,
            "type": msg.type,
            "author": self.user_json(msg.author_id),
            "content": msg.content,
            "timestamp": iso(msg.created_at),
            "edited_timestamp": iso(msg.edited_at),
            "tts": msg.tts,
            "mention_everyone": "@everyone" in msg.content or "@here" in msg.content,
            "mentions": [self.user_json(uid) for uid in mention_ids],
            "mention_roles": [rid for rid in dict.fromkeys(_ROLE_MENTION.findall(msg.content)) if rid in role_ids],
            "attachments": [self.attachment_json(f) for f in msg.attachments],
            "embeds": [dict(e) for e in msg.embeds],
            "pinned": False,
            "flags": msg.flags,
            "components": [dict(row) for row in msg.components],
        }
        if msg.nonce is not None:
            data["nonce"] = msg.nonce
        if msg.reactions:
            data["reactions"] = [
                {
                    "emoji": r.emoji,
                    "count": len(r.users),
                    "count_details": {"burst": 0, "normal": len(r.users)},
                    "burst_colors": [],
                    "me": self.bot_id in r.users,
                    "me_burst": False,
                    "burst_me": False,
                }
                for r in msg.reactions.values()
            ]
        if msg.reference is not None:
            data["message_reference"] = msg.reference
            if not nested:
                target = self.channels.get(msg.reference["channel_id"])
                ref = target.messages.get(msg.reference["message_id"]) if target else None
                data["referenced_message"] = self.message_json(ref, nested=True) if ref else None
        if msg.thread_id and msg.thread_id in self.channels:
            data["thread"] = self.channel_json(self.channels[msg.thread_id])
        return data

    def gateway_message_json(self, msg: MessageRecord) -> dict[str, Any]:
        """A message as MESSAGE_CREATE/UPDATE carry it: with ``guild_id``, ``member`` and mention members."""
        data = self.message_json(msg)
        data["guild_id"] = self.guild_id
        data["member"] = self.member_json(msg.author_id, with_user=False)
        for mention in data["mentions"]:
            mention["member"] = self.member_json(mention["id"], with_user=False)
        return data

    def visible_to_bot(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` as an app without the message content intent sees it.

        Discord blanks content, embeds and attachments of messages unless the app wrote
        them or they mention it.
        """
        if data.get("author", {}).get("id") == self.bot_id:
            return data
        if any(m.get("id") == self.bot_id for m in data.get("mentions", [])):
            return data
        return {**data, "content": "", "embeds": [], "attachments": [], "components": []}

    # -- changes --------------------------------------------------------------------------

    def store_file(self, upload: SandboxFile) -> StoredFile:
        if len(upload.data) > MAX_FILE_BYTES:
            raise errors.too_large()
        # Discord keeps only the last path component and replaces spaces.
        filename = upload.filename.replace("\\", "/").rsplit("/", 1)[-1].replace(" ", "_") or "unknown"
        content_type = upload.content_type
        if not content_type or content_type == "application/octet-stream":
            guessed = mimetypes.guess_type(filename)[0]
            content_type = guessed or content_type or "application/octet-stream"
        stored = StoredFile(self.ids.next(), filename, content_type, upload.data, upload.description)
        self.files[stored.id] = stored
        return stored

    def _writable(self, channel_id: str) -> ChannelRecord:
        channel = self.channel(channel_id)
        if channel.is_thread and channel.archived:
            if channel.locked:
                raise errors.thread_locked()
            # Sending in an archived (unlocked) thread unarchives it, as on Discord.
            channel.archived = False
            channel.archive_timestamp = self.clock.now()
            self.sink.dispatch("THREAD_UPDATE", self.channel_json(channel))
        return channel

    def create_message(
        self,
        channel_id: str,
        author_id: str,
        *,
        content: str = "",
        embeds: Sequence[dict[str, Any]] = (),
        files: Sequence[SandboxFile] = (),
        reference: dict[str, Any] | None = None,
        nonce: str | int | None = None,
        tts: bool = False,
        flags: int = 0,
        components: Sequence[dict[str, Any]] = (),
    ) -> MessageRecord:
        self.user(author_id)
        validate_message(content, embeds)
        if not content and not embeds and not files:
            raise errors.empty_message()
        self.channel(channel_id)
        if any(len(f.data) > MAX_FILE_BYTES for f in files):
            raise errors.too_large()
        ref = None
        if reference and reference.get("message_id"):
            ref_channel = str(reference.get("channel_id") or channel_id)
            ref_id = str(reference["message_id"])
            target = self.channels.get(ref_channel)
            if target is None or ref_id not in target.messages:
                if reference.get("fail_if_not_exists", True):
                    raise errors.invalid_form(
                        {"message_reference": ("MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")}
                    )
            else:
                ref = {"type": 0, "message_id": ref_id, "channel_id": ref_channel, "guild_id": self.guild_id}
        channel = self._writable(channel_id)
        stored = [self.store_file(f) for f in files]
        msg = MessageRecord(
            id=self.ids.next(),
            channel_id=channel.id,
            author_id=author_id,
            content=content,
            embeds=[{"type": "rich", **e} for e in embeds],
            attachments=stored,
            type=MESSAGE_REPLY if ref else MESSAGE_DEFAULT,
            reference=ref,
            nonce=nonce,
            tts=tts,
            flags=flags,
            components=[dict(row) for row in components],
        )
        channel.messages[msg.id] = msg
        if channel.is_thread:
            channel.total_message_sent += 1
            if author_id not in channel.member_ids:
                channel.member_ids.append(author_id)
        self.sink.dispatch("MESSAGE_CREATE", self.gateway_message_json(msg))
        return msg

    def edit_message(self, channel_id: str, message_id: str, editor_id: str, changes: dict[str, Any]) -> MessageRecord:
        msg = self.message(channel_id, message_id)
        if msg.author_id != editor_id:
            raise errors.not_author()
        content = changes.get("content", msg.content)
        content = "" if content is None else str(content)
        embeds = changes.get("embeds", msg.embeds)
        embeds = [] if embeds is None else list(embeds)
        validate_message(content, embeds)
        keep = changes.get("attachments")
        attachments = msg.attachments
        if keep is not None:
            wanted = {str(a.get("id")) for a in keep if isinstance(a, dict)}
            attachments = [f for f in msg.attachments if f.id in wanted]
        if not content and not embeds and not attachments:
            raise errors.empty_message()
        msg.content = content
        msg.embeds = [{"type": "rich", **e} for e in embeds]
        msg.attachments = attachments
        if "flags" in changes and isinstance(changes["flags"], int):
            msg.flags = changes["flags"]
        if "components" in changes:
            rows = changes["components"]
            msg.components = [dict(row) for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []
        msg.edited_at = self.clock.now()
        self.sink.dispatch("MESSAGE_UPDATE", self.gateway_message_json(msg))
        return msg

    def delete_message(self, channel_id: str, message_id: str) -> MessageRecord:
        channel = self.channel(channel_id)
        msg = channel.messages.pop(message_id, None)
        if msg is None:
            raise errors.unknown_message()
        self.sink.dispatch("MESSAGE_DELETE", {"id": message_id, "channel_id": channel_id, "guild_id": self.guild_id})
        return msg

    def add_reaction(self, channel_id: str, message_id: str, emoji: str, user_id: str) -> bool:
        """Returns False when the user had already reacted with it (Discord answers 204 anyway)."""
        msg = self.message(channel_id, message_id)
        emoji_data = parse_emoji(emoji)
        reaction = msg.reactions.setdefault(emoji, Reaction(emoji_data))
        if user_id in reaction.users:
            return False
        reaction.users.append(user_id)
        self.sink.dispatch(
            "MESSAGE_REACTION_ADD",
            {
                "user_id": user_id,
                "channel_id": channel_id,
                "message_id": message_id,
                "guild_id": self.guild_id,
                "member": self.member_json(user_id),
                "emoji": emoji_data,
                "message_author_id": msg.author_id,
                "burst": False,
                "type": 0,
            },
        )
        return True

    def remove_reaction(self, channel_id: str, message_id: str, emoji: str, user_id: str) -> bool:
        msg = self.message(channel_id, message_id)
        reaction = msg.reactions.get(emoji)
        if reaction is None or user_id not in reaction.users:
            return False
        reaction.users.remove(user_id)
        if not reaction.users:
            del msg.reactions[emoji]
        self.sink.dispatch(
            "MESSAGE_REACTION_REMOVE",
            {
                "user_id": user_id,
                "channel_id": channel_id,
                "message_id": message_id,
                "guild_id": self.guild_id,
                "emoji": reaction.emoji,
                "burst": False,
                "type": 0,
            },
        )
        return True

    def create_thread(
        self, channel_id: str, message_id: str, name: str, owner_id: str, auto_archive_duration: int = 1440
    ) -> ChannelRecord:
        """Start a public thread on a message; like Discord, the thread takes the message's ID."""
        parent = self.channel(channel_id)
        if parent.is_thread:
            raise errors.wrong_channel_type()
        msg = self.message(channel_id, message_id)
        problems = {}
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            problems["name"] = ("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if auto_archive_duration not in ARCHIVE_DURATIONS:
            problems["auto_archive_duration"] = (
                "BASE_TYPE_CHOICES",
                f"Value must be one of {sorted(ARCHIVE_DURATIONS)}.",
            )
        if problems:
            raise errors.invalid_form(problems)
        if parent.refuse_threads:
            raise errors.missing_permissions()
        if msg.thread_id is not None:
            raise errors.thread_exists()
        thread = ChannelRecord(
            id=msg.id,
            name=name,
            type=CHANNEL_PUBLIC_THREAD,
            parent_id=parent.id,
            owner_id=owner_id,
            auto_archive_duration=auto_archive_duration,
            archive_timestamp=self.clock.now(),
            member_ids=[owner_id],
        )
        self.channels[thread.id] = thread
        msg.thread_id = thread.id
        msg.flags |= MESSAGE_FLAG_HAS_THREAD
        self.sink.dispatch(
            "THREAD_CREATE",
            {**self.channel_json(thread), "newly_created": True, "member": self.thread_member_json(thread, owner_id)},
        )
        return thread

    def update_channel(self, channel_id: str, changes: dict[str, Any]) -> ChannelRecord:
        channel = self.channel(channel_id)
        problems: dict[str, tuple[str, str]] = {}
        if "name" in changes:
            name = changes["name"]
            if not isinstance(name, str) or not 1 <= len(name) <= 100:
                problems["name"] = ("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if channel.is_thread:
            for key in ("archived", "locked"):
                if key in changes and not isinstance(changes[key], bool):
                    problems[key] = ("BASE_TYPE_BOOLEAN", "Must be either true or false.")
            if "auto_archive_duration" in changes and changes["auto_archive_duration"] not in ARCHIVE_DURATIONS:
                problems["auto_archive_duration"] = (
                    "BASE_TYPE_CHOICES",
                    f"Value must be one of {sorted(ARCHIVE_DURATIONS)}.",
                )
        if problems:
            raise errors.invalid_form(problems)
        if "name" in changes:
            channel.name = changes["name"]
        if channel.is_thread:
            if "archived" in changes and changes["archived"] != channel.archived:
                channel.archived = changes["archived"]
                channel.archive_timestamp = self.clock.now()
            if "locked" in changes:
                channel.locked = changes["locked"]
            if "auto_archive_duration" in changes:
                channel.auto_archive_duration = changes["auto_archive_duration"]
            self.sink.dispatch("THREAD_UPDATE", self.channel_json(channel))
        else:
            if "topic" in changes:
                channel.topic = changes["topic"]
            self.sink.dispatch("CHANNEL_UPDATE", self.channel_json(channel))
        return channel

    def history(
        self,
        channel_id: str,
        limit: int = 50,
        *,
        before: str | None = None,
        after: str | None = None,
        around: str | None = None,
    ) -> list[MessageRecord]:
        """Discord's paging: newest first; ``after`` gives the ``limit`` messages right after it."""
        ordered = sorted(self.channel(channel_id).messages.values(), key=lambda m: int(m.id))
        if around is not None:
            pivot = int(around)
            older = [m for m in ordered if int(m.id) < pivot][-(limit // 2) :] if limit // 2 else []
            newer = [m for m in ordered if int(m.id) >= pivot][: limit - len(older)]
            picked = older + newer
        elif after is not None:
            picked = [m for m in ordered if int(m.id) > int(after)][:limit]
            if before is not None:
                picked = [m for m in picked if int(m.id) < int(before)]
        else:
            if before is not None:
                ordered = [m for m in ordered if int(m.id) < int(before)]
            picked = ordered[-limit:] if limit else []
        return list(reversed(picked))


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
