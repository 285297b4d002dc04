"""The threads of the selected project: name, ID, sessions, last activity, state and messages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from mpg_tui.tui import formatting as fmt
from mpg_tui.tui.model import ThreadSummary


class ThreadsPane(OptionList):
    # Moving the highlight repainted every line of the pane (~5 ms a frame with a few
    # hundred threads); only the two options whose style changed are repainted now.
    highlighted: reactive[int | None] = reactive(None, repaint=False)

    @dataclass
    class Selected(Message):
        thread_id: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: list[ThreadSummary] = []
        self._now = 0.0

    def on_mount(self) -> None:
        self.watch(self, "highlighted", self._highlight_moved, init=False)

    def _highlight_moved(self, old: int | None, new: int | None) -> None:
        self._repaint_options(index for index in (old, new) if index is not None)

    def _repaint_options(self, indices: Iterable[int]) -> None:
        """Repaint the lines of these options that are on screen, not the whole pane."""
        top = self.scroll_offset.y
        height = self.scrollable_content_region.height
        lines, heights = self._index_to_line, self._heights
        for index in indices:
            y = lines.get(index)
            if y is not None and y < top + height and y + heights[index] > top:
                self.refresh_lines(y, heights[index])

    @property
    def thread_ids(self) -> list[str]:
        """The listed threads, top to bottom."""
        return [t.thread_id for t in self._shown]

    @property
    def selected_thread(self) -> str | None:
        if self.highlighted is None or not self._shown:
            return None
        return self.get_option_at_index(self.highlighted).id

    def show(self, threads: Sequence[ThreadSummary], now: float, selected: str | None) -> None:
        """Show ``threads`` (newest first) with ``selected`` highlighted.

        Silent: only the operator moving the highlight announces a selection. Only changed
        rows are redrawn; the list is rebuilt when threads come or go.
        """
        threads = list(threads)
        ids = [t.thread_id for t in threads]
        before = self._now
        self._now = now
        with self.prevent(OptionList.OptionHighlighted):
            if ids == [t.thread_id for t in self._shown] and threads:
                changed = [
                    new
                    for old, new in zip(self._shown, threads, strict=True)
                    if old != new or fmt.ago(before - old.last_activity) != fmt.ago(now - new.last_activity)
                ]
                self._replace_prompts(changed, now)
            elif threads:
                self.set_options(Option(self._prompt(t, now), id=t.thread_id) for t in threads)
            else:
                self.set_options([Option(Text("No threads yet", style=fmt.MUTED), disabled=True)])
            self._shown = threads
        self.highlight_thread(selected)

    def _replace_prompts(self, threads: Sequence[ThreadSummary], now: float) -> None:
        """New prompts for ``threads``, repainting those on screen.

        ``replace_option_prompt`` re-measures every option of the list for each prompt it
        replaces: hundreds of threads whose times moved on made a tick cost seconds. Every
        prompt is two unwrapped lines, so the heights stay: only these options' renderings
        are dropped, and the repaint draws the others from the cache.
        """
        if not threads:
            return
        options = set()
        for thread in threads:
            option = self.get_option(thread.thread_id)
            option._set_prompt(self._prompt(thread, now))
            options.add(option)
        cache = self._option_render_cache
        for key in [key for key in tuple(cache.keys()) if key[0] in options]:
            cache.discard(key)
        # Threads off screen are drawn from their new prompts when scrolled to.
        self._repaint_options(self.get_option_index(thread.thread_id) for thread in threads)

    def highlight_thread(self, thread_id: str | None) -> None:
        """Highlight ``thread_id`` (nothing when it is not listed), without announcing it."""
        ids = self.thread_ids
        index = ids.index(thread_id) if thread_id in ids else None
        if self.highlighted != index:
            with self.prevent(OptionList.OptionHighlighted):
                self.highlighted = index

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Selected(event.option.id))

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()

    @staticmethod
    def _prompt(thread: ThreadSummary, now: float) -> Text:
        # Plain two-line Text, not a grid: hundreds of these are redrawn as times move on.
        glyph, colour = fmt.STATE_STYLE.get(thread.state, ("?", fmt.TEXT))
        prompt = Text(no_wrap=True, overflow="ellipsis")
        # The core names only threads it saw open; older ones are known by their ID.
        prompt.append(f"{glyph} ", style=colour)
        prompt.append(thread.name or thread.thread_id, style=fmt.TEXT)
        prompt.append("\n  ")
        # Most glanceable first: a narrow sidebar cuts the end of the line.
        prompt.append(fmt.ago(now - thread.last_activity), style=fmt.IDLE)
        if thread.paused:
            prompt.append(f" · ⏸ paused ({thread.paused} budget)", style=fmt.ERROR)
        if thread.state != "idle":
            prompt.append(f" · {thread.state}", style=colour)
        prompt.append(f" · {thread.sessions} session{'s' * (thread.sessions != 1)}", style=fmt.MUTED)
        if thread.agents:
            prompt.append(f" · {', '.join(thread.agents)}", style=fmt.MUTED)
        counts = thread.messages
        if counts.waiting or counts.running or counts.answered:
            prompt.append(
                f" · msgs {counts.waiting} waiting/{counts.running} running/{counts.answered} answered",
                style=fmt.MUTED,
            )
        if thread.name:
            prompt.append(f" · {thread.thread_id}", style=fmt.MUTED)
        return prompt
