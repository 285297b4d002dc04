"""The approvals inbox's list: every request waiting for a person, oldest first."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from mpg_tui.core.api import ApprovalInfo
from mpg_tui.tui import formatting as fmt

KIND_LABELS = {"tool": "tool", "question": "question", "plan": "plan"}


class ApprovalsList(DataTable[Text | str]):
    """One row a request; the row key is the request's ID."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("kind", "tool", "what", "asked by", "expires in")

    def show(self, approvals: list[ApprovalInfo], now: float) -> None:
        selected = self.selected_id
        self.clear()
        for info in approvals:
            what = info.summary
            if info.options:
                what += "  [" + " · ".join(f"{n + 1} {label}" for n, label in enumerate(info.options)) + "]"
            self.add_row(
                Text(KIND_LABELS.get(info.kind, info.kind), style=f"bold {fmt.ACCENT}"),
                info.tool,
                fmt.truncate(" ".join(what.split()), 90),
                info.requested_by or "—",
                fmt.uptime(max(0.0, info.expires_at - now)),
                key=info.id,
            )
        if selected is not None:
            ids = [info.id for info in approvals]
            if selected in ids:
                self.move_cursor(row=ids.index(selected))

    def select_id(self, request_id: str) -> bool:
        """Put the cursor on request ``request_id``; False when it is not listed."""
        try:
            row = self.get_row_index(request_id)
        except RowDoesNotExist:
            return False
        self.move_cursor(row=row)
        return True

    @property
    def selected_id(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return str(key.value) if key.value is not None else None
