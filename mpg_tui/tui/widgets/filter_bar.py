"""The sessions filter: words matched against key, project, agent, state and runner."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class FilterBar(Input):
    # Its messages must not be named Changed/Submitted: Input posts ``self.Changed(...)``.
    BINDINGS = [Binding("escape", "dismiss", "Clear filter", show=True)]

    @dataclass
    class QueryChanged(Message):
        query: str

    @dataclass
    class Done(Message):
        """The operator is finished typing (enter or escape); focus can go back to the table."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            placeholder="filter sessions by key, project, agent or state  (enter: keep · esc: clear)", id=id
        )

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.QueryChanged(event.value))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Done())

    def action_dismiss(self) -> None:
        self.value = ""
        self.post_message(self.QueryChanged(""))
        self.post_message(self.Done())
