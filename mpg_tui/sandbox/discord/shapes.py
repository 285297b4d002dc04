"""The sandbox's records in Discord's JSON shapes, as the REST API and the gateway send them.

String snowflakes, ISO timestamps, and the fields discord.py 2.7 reads. Messages come in
two shapes (REST, and the gateway's with ``guild_id`` and members), and
:meth:`DiscordShapes.visible_to_bot` blanks what an app without the message content
intent may not read.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mpg_tui.sandbox.discord.records import ChannelRecord, MessageRecord, StoredFile, iso
from mpg_tui.sandbox.discord.spec import snowflake_time

if TYPE_CHECKING:
    from mpg_tui.sandbox.discord.state import SandboxState

_APPLICATION_FLAGS = {"presences": 1 << 13, "members": 1 << 15, "message_content": 1 << 19}
_USER_MENTION = re.compile(r"<@!?([0-9]+)>")
_ROLE_MENTION = re.compile(r"<@&([0-9]+)>")


class DiscordShapes:
    """Renders the records of one :class:`~.state.SandboxState` as Discord does."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state

    def user_json(self, user_id: str) -> dict[str, Any]:
        user = self._state.user(user_id)
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
            **self.user_json(self._state.bot_id),
            "verified": True,
            "mfa_enabled": False,
            "email": None,
            "locale": "en-US",
            "bio": "",
        }

    def application_flags(self) -> int:
        """The ``GATEWAY_*_LIMITED`` flags of the privileged intents the bot has enabled."""
        enabled = self._state.spec.privileged_intents
        return sum(bit for name, bit in _APPLICATION_FLAGS.items() if name in enabled)

    def application_json(self) -> dict[str, Any]:
        owner = self._state.spec.users[0].id if self._state.spec.users else self._state.bot_id
        return {
            "id": self._state.bot_id,
            "name": self._state.spec.bot.username,
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
            "bot": self.user_json(self._state.bot_id),
            "redirect_uris": [],
            "tags": [],
            "approximate_guild_count": 1,
            "interactions_endpoint_url": None,
            "integration_types_config": {"0": {}},
        }

    def member_json(self, user_id: str, *, with_user: bool = True) -> dict[str, Any]:
        user = self._state.user(user_id)
        data: dict[str, Any] = {
            "roles": list(user.roles),
            "nick": None,
            "avatar": None,
            "banner": None,
            "joined_at": iso(self._state.started_at),
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
        everyone = {
            "id": self._state.guild_id,
            "name": "@everyone",
            "permissions": self._state.spec.everyone_permissions,
            "color": 0,
        }
        roles = [everyone] + [
            {"id": r.id, "name": r.name, "permissions": r.permissions, "color": r.color} for r in self._state.spec.roles
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
            data["guild_id"] = self._state.guild_id
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
            "id": self._state.guild_id,
            "name": self._state.spec.guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": self._state.spec.users[0].id if self._state.spec.users else self._state.bot_id,
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
        everyone = [*self._state.spec.users, self._state.spec.bot]
        members = [self.member_json(u.id) for u in (everyone if with_members else [self._state.spec.bot])]
        return {
            **self.guild_json(),
            "joined_at": iso(self._state.started_at),
            "large": False,
            "unavailable": False,
            "member_count": len(everyone),
            "members": members,
            "channels": [
                self.channel_json(c, with_guild_id=False) for c in self._state.channels.values() if not c.is_thread
            ],
            "threads": [self.channel_json(c) for c in self._state.channels.values() if c.is_thread and not c.archived],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
        }

    def file_url(self, stored: StoredFile) -> str:
        return f"{self._state.base_url}/_sandbox/attachments/{stored.id}/{quote(stored.filename)}"

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
        mention_ids = [uid for uid in dict.fromkeys(_USER_MENTION.findall(msg.content)) if uid in self._state.users]
        role_ids = {r.id for r in self._state.spec.roles}
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
                    "me": self._state.bot_id in r.users,
                    "me_burst": False,
                    "burst_me": False,
                }
                for r in msg.reactions.values()
            ]
        if msg.reference is not None:
            data["message_reference"] = msg.reference
            if not nested:
                target = self._state.channels.get(msg.reference["channel_id"])
                ref = target.messages.get(msg.reference["message_id"]) if target else None
                data["referenced_message"] = self.message_json(ref, nested=True) if ref else None
        if msg.thread_id and msg.thread_id in self._state.channels:
            data["thread"] = self.channel_json(self._state.channels[msg.thread_id])
        return data

    def gateway_message_json(self, msg: MessageRecord) -> dict[str, Any]:
        """A message as MESSAGE_CREATE/UPDATE carry it: with ``guild_id``, ``member`` and mention members."""
        data = self.message_json(msg)
        data["guild_id"] = self._state.guild_id
        data["member"] = self.member_json(msg.author_id, with_user=False)
        for mention in data["mentions"]:
            mention["member"] = self.member_json(mention["id"], with_user=False)
        return data

    def visible_to_bot(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` as an app without the message content intent sees it.

        Discord blanks content, embeds and attachments of messages unless the app wrote
        them or they mention it.
        """
        if data.get("author", {}).get("id") == self._state.bot_id:
            return data
        if any(m.get("id") == self._state.bot_id for m in data.get("mentions", [])):
            return data
        return {**data, "content": "", "embeds": [], "attachments": [], "components": []}
