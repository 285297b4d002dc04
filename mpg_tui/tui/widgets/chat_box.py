"""The demo's chat box: talk to a sandbox channel as "you" without a Discord client."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label, Select


class ChatBox(Horizontal):
    BINDINGS = [Binding("escape", "leave", "Leave the chat", show=False)]

    @dataclass
    class Submitted(Message):
        channel_id: str
        text: str

    class Left(Message):
        """The operator left the chat box (escape): the cockpit's keys work again."""

    def __init__(self, channels: Sequence[tuple[str, str]], *, id: str | None = None) -> None:
        """``channels``: (channel_id, label) pairs, the first selected."""
        super().__init__(id=id)
        if not channels:
            raise ValueError("the chat box needs at least one channel")
        self.channels = list(channels)

    def compose(self) -> ComposeResult:
        yield Label("chat", id="chat-label")
        yield Select(
            [(label, channel_id) for channel_id, label in self.channels],
            value=self.channels[0][0],
            allow_blank=False,
            compact=True,
            id="chat-channel",
        )
        yield Input(placeholder="message the channel as “you” (enter sends)", compact=True, id="chat-input")

    @property
    def channel_id(self) -> str:
        value = self.query_one("#chat-channel", Select).value
        return value if isinstance(value, str) else self.channels[0][0]

    def action_leave(self) -> None:
        self.post_message(self.Left())

    def focus_input(self) -> None:
        self.query_one("#chat-input", Input).focus()

    @on(Input.Submitted, "#chat-input")
    def _send(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            return
        event.input.value = ""
        self.post_message(self.Submitted(self.channel_id, text))
