"""The selected thread's conversation: what people wrote, what the agents replied, handoffs, errors
and notices, newest last, following the thread live."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.events import Resize
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import RichLog

from mpg_tui.core.api import MAX_ENTRIES, ConversationEntry
from mpg_tui.tui import formatting as fmt

KIND_STYLE: dict[str, str] = {
    "message": fmt.TEXT,
    "reply": fmt.TEXT,
    "handoff": fmt.QUEUED,
    "error": fmt.ERROR,
    "notice": fmt.MUTED,
    "held": fmt.ACCENT,
    "released": fmt.ACCENT,
}
WHO_STYLE: dict[str, str] = {"message": f"bold {fmt.RUNNING}", "reply": f"bold {fmt.ACCENT}"}
REPLY_LINES = 12
"""Lines of a long reply shown; the rest is in Discord (and the session's detail)."""


class ConversationView(RichLog):
    # Writing changes the scrollable size, which by default lays the whole screen out again
    # (40 to 100 ms with a thousand sessions), for every conversation read. Only the
    # scrollbar depends on it: that follows here, and a layout happens only when it
    # appears or goes.
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    def watch_virtual_size(self, size: Size) -> None:
        self._scroll_update(size)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            max_lines=MAX_ENTRIES * (REPLY_LINES + 2), min_width=20, wrap=True, markup=False, highlight=False, id=id
        )
        self.thread_id: str | None = None
        self.entries: list[ConversationEntry] = []
        self._wrapped_at = 0

    def show(self, thread_id: str | None, entries: Sequence[ConversationEntry]) -> None:
        """Show ``thread_id``'s conversation; only what is new is written when it is the same thread."""
        same = thread_id == self.thread_id and list(entries[: len(self.entries)]) == self.entries
        if not same:
            self.clear()
            self.entries = []
            self.thread_id = thread_id
        if thread_id is None:
            self.write(Text("Select a session to read its thread here.", style=fmt.MUTED))
            return
        new = list(entries[len(self.entries) :])
        if not same and not new:
            self.write(Text("Nothing said in this thread since the gateway started.", style=fmt.MUTED))
        for entry in new:
            self.write(self._entry_line(entry))
        self.entries = list(entries)

    def on_resize(self, event: Resize) -> None:
        # Lines are wrapped when written: a new width needs them written again. (Textual
        # runs RichLog's own handler as well, which writes what waited for a first size.)
        if event.size.width == self._wrapped_at or not self.entries:
            return
        self._wrapped_at = event.size.width
        thread, entries = self.thread_id, self.entries
        self.thread_id, self.entries = None, []
        self.clear()
        if thread is not None:
            self.show(thread, entries)

    def shown_text(self) -> list[str]:
        """The plain text of the entries shown (for tests)."""
        return [f"{e.who}: {e.text}" for e in self.entries]

    @staticmethod
    def _entry_line(entry: ConversationEntry) -> Text:
        text = Text()
        text.append(fmt.clock_time(entry.at), style=fmt.MUTED)
        text.append(" ")
        if entry.kind in ("message", "reply"):
            text.append(entry.who, style=WHO_STYLE[entry.kind])
            body = entry.text.strip() or "(empty)"
            lines = body.splitlines()
            if len(lines) > REPLY_LINES:
                lines = [*lines[:REPLY_LINES], f"… {len(lines) - REPLY_LINES} more lines"]
            text.append("\n" + "\n".join(lines), style=KIND_STYLE[entry.kind])
        else:
            mark = {"handoff": "⇢ ", "error": "✖ ", "held": "⏸ ", "released": "▶ "}.get(entry.kind, "· ")
            text.append(mark + " ".join(entry.text.split()), style=KIND_STYLE[entry.kind])
        return text
