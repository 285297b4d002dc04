"""Message components and interactions, as Discord does them for discord.py 2.7.

A sandbox user clicks a button (:meth:`Interactions.click`, or ``POST /_sandbox/click``):
the bot gets ``INTERACTION_CREATE`` (type 3, the button's ``custom_id``, the member with
their roles, the message) and answers through the interaction's webhook, without the bot
token: ``POST /interactions/{id}/{token}/callback`` (discord.py asks ``with_response``),
then follow-ups ``POST /webhooks/{app}/{token}`` and edits
``PATCH /webhooks/{app}/{token}/messages/{id|@original}``. Ephemeral answers (flag 64) are
kept with the interaction, visible to the clicker only, never in the channel.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from mpg_tui.sandbox.discord import errors
from mpg_tui.sandbox.discord.errors import ApiError
from mpg_tui.sandbox.discord.state import SandboxState

EPHEMERAL = 1 << 6
COMPONENT_INTERACTION = 3
BUTTON = 2
# Callback types (Discord's InteractionResponseType).
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE = 6
UPDATE_MESSAGE = 7


@dataclass
class InteractionRecord:
    id: str
    token: str
    channel_id: str
    message_id: str
    user_id: str
    custom_id: str
    responses: list[dict[str, Any]] = field(default_factory=list)
    """Every answer the bot gave: ``{"type", "content", "ephemeral", ...}``, oldest first."""
    answered_event: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    """Set once the bot has answered (tests await it)."""

    def respond(self, response: dict[str, Any]) -> None:
        self.responses.append(response)
        self.answered_event.set()

    @property
    def answered(self) -> bool:
        return bool(self.responses)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel_id": self.channel_id,
            "message_id": self.message_id,
            "user_id": self.user_id,
            "custom_id": self.custom_id,
            "responses": list(self.responses),
        }


def find_button(components: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
    for row in components:
        for item in row.get("components") or []:
            if isinstance(item, dict) and item.get("custom_id") == custom_id:
                return item
    return None


class Interactions:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.records: dict[str, InteractionRecord] = {}

    def click(self, channel_id: str, message_id: str, user_id: str, custom_id: str) -> InteractionRecord:
        """A member presses a button of a message; dispatches INTERACTION_CREATE."""
        state = self.state
        state.user(user_id)
        message = state.message(channel_id, message_id)
        button = find_button(message.components, custom_id)
        if button is None:
            raise errors.invalid_form({"custom_id": ("COMPONENT_UNKNOWN", "No such button on this message")})
        if button.get("disabled"):
            raise ApiError(400, "This component is disabled", 50035)
        record = InteractionRecord(
            id=state.ids.next(),
            token=secrets.token_urlsafe(24),
            channel_id=channel_id,
            message_id=message_id,
            user_id=user_id,
            custom_id=custom_id,
        )
        self.records[record.id] = record
        state.sink.dispatch(
            "INTERACTION_CREATE",
            {
                "id": record.id,
                "application_id": state.bot_id,
                "type": COMPONENT_INTERACTION,
                "data": {"custom_id": custom_id, "component_type": BUTTON},
                "guild_id": state.guild_id,
                "channel_id": channel_id,
                "channel": state.shapes.channel_json(state.channel(channel_id)),
                "member": {**state.shapes.member_json(user_id), "permissions": "2248473465835073"},
                "message": state.shapes.message_json(message),
                "token": record.token,
                "version": 1,
                "app_permissions": "2248473465835073",
                "locale": "en-US",
                "guild_locale": "en-US",
                "entitlements": [],
                "authorizing_integration_owners": {"0": state.guild_id},
                "context": 0,
                "attachment_size_limit": 10 * 1024 * 1024,
            },
        )
        return record

    def _record(self, interaction_id: str, token: str) -> InteractionRecord:
        record = self.records.get(interaction_id)
        if record is None or not secrets.compare_digest(record.token, token):
            raise ApiError(404, "Unknown interaction", 10062)
        return record

    def _by_token(self, token: str) -> InteractionRecord:
        for record in self.records.values():
            if secrets.compare_digest(record.token, token):
                return record
        raise ApiError(404, "Unknown Webhook", 10015)

    def callback(self, interaction_id: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /interactions/{id}/{token}/callback``; the ``with_response`` answer."""
        record = self._record(interaction_id, token)
        if record.answered:
            raise ApiError(400, "Interaction has already been acknowledged.", 40060)
        kind = body.get("type")
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        assert isinstance(data, dict)
        message: dict[str, Any] | None = None
        ephemeral = bool(int(data.get("flags") or 0) & EPHEMERAL)
        if kind == CHANNEL_MESSAGE:
            message = self._answer(record, data, ephemeral=ephemeral)
        elif kind == UPDATE_MESSAGE:
            edited = self.state.edit_message(record.channel_id, record.message_id, self.state.bot_id, data)
            record.respond({"type": kind, "content": edited.content})
            message = self.state.shapes.message_json(edited)
        elif kind in (DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE):
            record.respond({"type": kind, "ephemeral": ephemeral})
        else:
            raise errors.invalid_form({"type": ("BASE_TYPE_CHOICES", f"Value {kind!r} is not a valid response type")})
        callback: dict[str, Any] = {
            "interaction": {
                "id": record.id,
                "type": COMPONENT_INTERACTION,
                "response_message_id": message["id"] if message else None,
                "response_message_loading": kind == DEFERRED_CHANNEL_MESSAGE,
                "response_message_ephemeral": ephemeral,
            }
        }
        if message is not None:
            callback["resource"] = {"type": kind, "message": message}
        return callback

    def follow_up(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /webhooks/{app}/{token}``: a follow-up message."""
        record = self._by_token(token)
        return self._answer(record, body, ephemeral=bool(int(body.get("flags") or 0) & EPHEMERAL))

    def edit(self, token: str, message_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``PATCH /webhooks/{app}/{token}/messages/{id}``: edit the original answer or a follow-up."""
        record = self._by_token(token)
        for response in reversed(record.responses):
            if message_id in ("@original", response.get("message_id")):
                if "content" in body:
                    response["content"] = str(body.get("content") or "")
                response["edited"] = True
                return self._message_json(record, response)
        raise errors.unknown_message()

    def _answer(self, record: InteractionRecord, data: dict[str, Any], *, ephemeral: bool) -> dict[str, Any]:
        content = str(data.get("content") or "")
        if not ephemeral:
            msg = self.state.create_message(record.channel_id, self.state.bot_id, content=content)
            record.respond({"type": CHANNEL_MESSAGE, "content": content, "message_id": msg.id})
            return self.state.shapes.message_json(msg)
        response = {"type": CHANNEL_MESSAGE, "content": content, "ephemeral": True, "message_id": self.state.ids.next()}
        record.respond(response)
        return self._message_json(record, response)

    def _message_json(self, record: InteractionRecord, response: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": response.get("message_id") or record.id,
            "channel_id": record.channel_id,
            "type": 19,
            "author": self.state.shapes.user_json(self.state.bot_id),
            "content": response.get("content", ""),
            "timestamp": "2024-01-01T00:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "flags": EPHEMERAL if response.get("ephemeral") else 0,
            "components": [],
            "application_id": self.state.bot_id,
        }
