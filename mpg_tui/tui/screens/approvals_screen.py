"""The approvals inbox: requests waiting for a person, decided here as the operator."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Label

from mpg_tui.core.api import CoreAPI
from mpg_tui.core.clock import Clock
from mpg_tui.tui.widgets.approvals_list import ApprovalsList


class ApprovalsScreen(ModalScreen[None]):
    """``a`` allow once, ``s`` allow for the session, ``d`` deny, ``1`` to ``4`` a question's option."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "decide('allow')", "Allow once"),
        Binding("s", "decide('allow_session')", "Allow for session"),
        Binding("d", "decide('deny')", "Deny"),
        Binding("1", "decide('option:0')", "Option 1", show=False),
        Binding("2", "decide('option:1')", "Option 2", show=False),
        Binding("3", "decide('option:2')", "Option 3", show=False),
        Binding("4", "decide('option:3')", "Option 4", show=False),
        Binding("escape,i", "close", "Close"),
    ]

    def __init__(self, core: CoreAPI, clock: Clock, *, select: str | None = None) -> None:
        """``select``: the request to put the cursor on first (the selected session's)."""
        super().__init__()
        self.core = core
        self.clock = clock
        self._select = select

    def compose(self) -> ComposeResult:
        with Vertical(id="approvals-dialog"):
            yield Label("Waiting for a person", id="approvals-title")
            yield ApprovalsList(id="approvals-list")
            yield Label("", id="approvals-empty")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_approvals()
        if self._select is not None:
            self.approvals_list.select_id(self._select)
        self.query_one(ApprovalsList).focus()

    @property
    def approvals_list(self) -> ApprovalsList:
        return self.query_one(ApprovalsList)

    def refresh_approvals(self) -> None:
        approvals = self.core.approvals()
        self.approvals_list.show(approvals, self.clock.now())
        self.query_one("#approvals-empty", Label).update("" if approvals else "Nothing is waiting.")

    async def action_decide(self, choice: str) -> None:
        request_id = self.approvals_list.selected_id
        if request_id is None:
            self.app.notify("Nothing is waiting.", severity="warning")
            return
        try:
            reply = await self.core.decide(request_id, choice)
        except Exception as exc:
            self.app.notify(f"Could not decide: {type(exc).__name__}: {exc}", severity="error")
            return
        self.app.notify(reply)
        self.refresh_approvals()

    def action_close(self) -> None:
        self.dismiss(None)
