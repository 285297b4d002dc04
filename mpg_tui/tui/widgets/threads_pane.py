"""The threads of the selected project: name, ID, sessions, last activity and state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from mpg_tui.tui import formatting as fmt
from mpg_tui.tui.model import ThreadSummary


class ThreadsPane(OptionList):
    @dataclass
    class Selected(Message):
        thread_id: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: list[ThreadSummary] = []
        self._now = 0.0

    @property
    def selected_thread(self) -> str | None:
        if self.highlighted is None or not self._shown:
            return None
        return self.get_option_at_index(self.highlighted).id

    def show(self, threads: Sequence[ThreadSummary], now: float) -> None:
        """Show ``threads`` (newest first), keeping the highlighted thread highlighted.

        Only changed rows are redrawn; the list is rebuilt when threads come or go.
        """
        threads = list(threads)
        ids = [t.thread_id for t in threads]
        before = self._now
        self._now = now
        if ids == [t.thread_id for t in self._shown] and threads:
            for old, new in zip(self._shown, threads, strict=True):
                if old != new or fmt.ago(before - old.last_activity) != fmt.ago(now - new.last_activity):
                    self.replace_option_prompt(new.thread_id, self._prompt(new, now))
            self._shown = threads
            return
        previous = self.selected_thread
        self._shown = threads
        with self.prevent(OptionList.OptionHighlighted):
            if threads:
                self.set_options(Option(self._prompt(t, now), id=t.thread_id) for t in threads)
            else:
                self.set_options([Option(Text("No threads yet", style=fmt.MUTED), disabled=True)])
        if not threads:
            return
        index = ids.index(previous) if previous in ids else 0
        with self.prevent(OptionList.OptionHighlighted):
            self.highlighted = index
        if threads[index].thread_id != previous:
            self.post_message(self.Selected(threads[index].thread_id))

    def select_thread(self, thread_id: str) -> None:
        """Highlight ``thread_id`` if listed, without announcing it (the caller already knows)."""
        for index, thread in enumerate(self._shown):
            if thread.thread_id == thread_id:
                with self.prevent(OptionList.OptionHighlighted):
                    self.highlighted = index
                return

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Selected(event.option.id))

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()

    @staticmethod
    def _prompt(thread: ThreadSummary, now: float) -> RenderableType:
        glyph, colour = fmt.STATE_STYLE.get(thread.state, ("?", fmt.TEXT))
        title = Table.grid(expand=True)
        title.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        title.add_column(justify="right", no_wrap=True)
        # The core names only threads it saw open; older ones are known by their ID.
        title.add_row(
            Text.assemble((f"{glyph} ", colour), (thread.name or thread.thread_id, fmt.TEXT)),
            Text(fmt.ago(now - thread.last_activity), style=fmt.IDLE),
        )
        sessions = f"{thread.sessions} session{'s' * (thread.sessions != 1)}"
        where = f"{thread.thread_id} · " if thread.name else ""
        detail = Text(f"  {where}{sessions}", style=fmt.MUTED, no_wrap=True, overflow="ellipsis")
        if thread.state != "idle":
            detail.append(f" · {thread.state}", style=colour)
        if thread.agents:
            detail.append(f" · {', '.join(thread.agents)}", style=fmt.MUTED)
        return Group(title, detail)
