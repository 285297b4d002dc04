"""The sandbox's world: the guild's channels, threads, messages, reactions and files, and every change to them.

:class:`SandboxState` holds the records (:mod:`.records`) and does every change the REST
routes and the control API ask for; each change raises :class:`~.errors.ApiError` when
Discord would refuse it, and hands the resulting gateway event to an :class:`EventSink`
(the gateway). :attr:`SandboxState.shapes` renders the records in Discord's JSON
(:mod:`.shapes`). Nothing here does I/O.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Sequence
from typing import Any, Protocol

from mpg_tui.core.clock import Clock
from mpg_tui.sandbox.discord import errors
from mpg_tui.sandbox.discord.records import (
    ARCHIVE_DURATIONS,
    CHANNEL_PUBLIC_THREAD,
    CHANNEL_TEXT,
    MAX_FILE_BYTES,
    MESSAGE_DEFAULT,
    MESSAGE_FLAG_HAS_THREAD,
    MESSAGE_REPLY,
    ChannelRecord,
    MessageRecord,
    Reaction,
    SandboxFile,
    StoredFile,
    parse_emoji,
    validate_message,
)
from mpg_tui.sandbox.discord.shapes import DiscordShapes
from mpg_tui.sandbox.discord.spec import SandboxSpec, SnowflakeFactory, UserSpec

log = logging.getLogger(__name__)


class EventSink(Protocol):
    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Deliver a gateway DISPATCH event to every session that should see it."""


class _NoSink:
    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        log.debug("no gateway attached; dropping %s", event)


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
        self.shapes = DiscordShapes(self)
        """The records in Discord's JSON shapes."""

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
            self.sink.dispatch("THREAD_UPDATE", self.shapes.channel_json(channel))
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
        self.sink.dispatch("MESSAGE_CREATE", self.shapes.gateway_message_json(msg))
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
        self.sink.dispatch("MESSAGE_UPDATE", self.shapes.gateway_message_json(msg))
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
                "member": self.shapes.member_json(user_id),
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
            {
                **self.shapes.channel_json(thread),
                "newly_created": True,
                "member": self.shapes.thread_member_json(thread, owner_id),
            },
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
            self.sink.dispatch("THREAD_UPDATE", self.shapes.channel_json(channel))
        else:
            if "topic" in changes:
                channel.topic = changes["topic"]
            self.sink.dispatch("CHANNEL_UPDATE", self.shapes.channel_json(channel))
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
