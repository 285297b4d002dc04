"""Jumping into a session while claude works on it: wait for the run, stop it, or cancel."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from mpg_tui.core.api import IfRunning


class BusyScreen(ModalScreen[IfRunning | None]):
    """Dismisses with "wait", "stop", or None (cancel: escape, "c", the default button)."""

    BINDINGS = [
        Binding("w", "choose('wait')", "Wait"),
        Binding("s", "choose('stop')", "Stop"),
        Binding("c,escape", "choose('')", "Cancel"),
    ]

    def __init__(self, key: str, body: str | Text) -> None:
        super().__init__()
        self.key = key
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(id="busy-dialog"):
            yield Label(f"{self.key} is running", id="busy-title")
            yield Static(self.body, id="busy-body")
            with Horizontal(id="busy-buttons"):
                yield Button("Cancel (c)", id="busy-cancel", variant="default")
                yield Button("Stop it (s)", id="busy-stop", variant="error")
                yield Button("Wait for it (w)", id="busy-wait", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#busy-cancel", Button).focus()

    def action_choose(self, choice: str) -> None:
        self.dismiss("wait" if choice == "wait" else "stop" if choice == "stop" else None)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose((event.button.id or "").removeprefix("busy-"))
