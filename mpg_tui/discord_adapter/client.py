"""The discord.py client: Discord events in, core calls out.

Translates each ``discord.Message`` into an :class:`~mpg_tui.core.ports.InboundMessage`
for the core's handler, reports the connection state on the event bus, and turns
discord.py's start-up failures into one plain sentence for the operator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import discord

from mpg_tui.core.bus import EventBus
from mpg_tui.core.events import ConnectionChanged, ConnectionState
from mpg_tui.core.ports import CardClick, InboundMessage
from mpg_tui.discord_adapter.cards import parse_click
from mpg_tui.discord_adapter.chat import DiscordChat, to_inbound

log = logging.getLogger(__name__)

MessageHandler = Callable[[InboundMessage], Awaitable[None]]
SessionHandler = Callable[[], Awaitable[None]]
ClickHandler = Callable[[CardClick], Awaitable[str]]


class DiscordStartError(Exception):
    """Discord would not let the bot in; the message says what the operator must do."""


def build_intents(*, members: bool) -> discord.Intents:
    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = members
    intents.presences = False
    return intents


class GatewayClient(discord.Client):
    """A discord.py client that hands every relevant message to the core."""

    def __init__(
        self,
        *,
        handler: MessageHandler,
        bus: EventBus,
        members_intent: bool,
        guild_ready_timeout: float = 2.0,
        on_new_session: SessionHandler | None = None,
        on_click: ClickHandler | None = None,
    ) -> None:
        super().__init__(
            intents=build_intents(members=members_intent),
            guild_ready_timeout=guild_ready_timeout,
            max_messages=1000,
        )
        self._handler = handler
        self._on_click = on_click
        self._bus = bus
        self._ever_ready = False
        self._on_new_session = on_new_session
        self.chat = DiscordChat(self)
        self.ready = asyncio.Event()

    def _state_changed(self, state: ConnectionState, detail: str = "") -> None:
        self._bus.publish(ConnectionChanged(state=state, detail=detail))

    async def setup_hook(self) -> None:
        self._state_changed("connecting", "logged in; opening the gateway")

    async def on_ready(self) -> None:
        again = self._ever_ready
        self._ever_ready = True
        self.ready.set()
        name = str(self.user) if self.user else "?"
        log.info("Gateway connected as %s (%d guilds)", name, len(self.guilds))
        self._state_changed("ready", f"connected as {name}")
        if again and self._on_new_session is not None:
            # A new session, not a resume: Discord did not replay what was posted meanwhile.
            log.info("Discord session started again (not resumed); catching up")
            await self._on_new_session()

    async def on_resumed(self) -> None:
        log.info("Discord session resumed")
        self._state_changed("ready", "resumed")

    async def on_disconnect(self) -> None:
        if self.is_closed():
            self._state_changed("disconnected", "closed")
        else:
            log.warning("Discord connection lost; reconnecting")
            self._state_changed("resuming" if self._ever_ready else "connecting", "connection lost; reconnecting")

    async def on_message(self, message: discord.Message) -> None:
        if self.user is not None and message.author.id == self.user.id:
            return
        if message.author.bot or message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        await self._handler(to_inbound(message))

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        click = parse_click(interaction)
        if click is None or self._on_click is None:
            return  # not one of our buttons: someone else's to answer
        try:
            reply = await self._on_click(click)
        except Exception:
            log.exception("handling a click on approval request %s failed", click.request_id)
            reply = "The gateway failed on this click; see its log."
        try:
            await interaction.response.send_message(reply[:2000], ephemeral=True)
        except discord.HTTPException as exc:
            log.warning("could not answer a click on %s: %s", click.request_id, exc)

    async def run_until_closed(self, token: str) -> None:
        """Log in and serve until closed; start-up refusals become :class:`DiscordStartError`."""
        self._state_changed("connecting", "logging in")
        try:
            async with self:
                await self.start(token, reconnect=True)
        except discord.LoginFailure as exc:
            raise DiscordStartError(
                "Discord rejected the bot token (401). Check DISCORD_BOT_TOKEN in your .env or environment."
            ) from exc
        except discord.PrivilegedIntentsRequired as exc:
            needed = "Message Content" + (" and Server Members" if self.intents.members else "")
            raise DiscordStartError(
                f"Discord refused the privileged intents: enable {needed} Intent for this bot under "
                "Bot > Privileged Gateway Intents in the Discord developer portal."
            ) from exc
        finally:
            self._state_changed("disconnected", "stopped")
