"""The event log: what the gateway did, newest at the bottom, filtered by level."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.cache import LRUCache
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.reactive import Reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Label, Select

from mpg_tui.tui import formatting as fmt
from mpg_tui.tui.digest import LEVELS, Level, LogEntry, normalize_level

KEEP = 2000
"""Entries kept for re-filtering; older ones are dropped."""

LEVEL_STYLE: dict[str, str] = {"debug": fmt.MUTED, "info": fmt.ACCENT, "warn": fmt.QUEUED, "error": fmt.ERROR}
FILTERS: list[tuple[str, Level]] = [("all", "debug"), ("info", "info"), ("warn", "warn"), ("error", "error")]


class LogLines(ScrollView, can_focus=True):
    """The shown entries, newest at the bottom, rendered only where they are on screen.

    A ``RichLog`` kept a rendered line for each of up to 2,000 entries: a strip of segments
    with its caches, some seventy objects each that every full garbage collection walked
    (40% of the cockpit's heap with a thousand sessions). And each write changed its
    scrollable size, which laid the whole screen out again (40 to 100 ms at 200x50). This
    keeps the entries themselves and renders the few lines on screen; entries added change
    the scrollable height without a layout of the screen (one happens only when the
    scrollbar appears or goes).
    """

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)
    CACHED_LINES = 256

    def __init__(self, line: Callable[[LogEntry], Text], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: deque[LogEntry] = deque(maxlen=KEEP)
        """What the log shows, oldest first."""
        self._line = line
        self._dropped = 0
        """Entries that fell off the front: a line's number since the log began keys its rendering."""
        self._rendered: LRUCache[tuple[int, int], Strip] = LRUCache(self.CACHED_LINES)

    def extend(self, entries: Iterable[LogEntry]) -> None:
        """Show ``entries`` below the others; the view follows them if it was at the bottom."""
        new = list(entries)
        if not new:
            return
        following = self.scroll_y >= self.max_scroll_y
        before = len(self.entries)
        self.entries.extend(new)
        self._dropped += before + len(new) - len(self.entries)
        self._grown(following)

    def clear(self) -> None:
        self.entries.clear()
        self._dropped = 0
        self._rendered.clear()
        self._grown(True)

    def _grown(self, following: bool) -> None:
        self.virtual_size = Size(0, len(self.entries))
        if following:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
        self.refresh()

    def watch_virtual_size(self, size: Size) -> None:
        # In place of the layout a change of virtual size asks for: the scrollbar follows.
        self._scroll_update(size)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = self.scroll_offset.y + y
        if not 0 <= index < len(self.entries) or width <= 0:
            return Strip.blank(width, self.rich_style)
        key = (self._dropped + index, width)
        strip = self._rendered.get(key)
        if strip is None:
            console = self.app.console
            options = console.options.update(width=width, no_wrap=True, overflow="ignore")
            segments = console.render_lines(self._line(self.entries[index]), options, pad=False)[0]
            strip = Strip(segments).crop_extend(0, width, self.rich_style).apply_style(self.rich_style)
            self._rendered[key] = strip
        return strip


class EventLog(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: deque[LogEntry] = deque(maxlen=KEEP)
        self.minimum: Level = "info"
        self._unwritten: list[LogEntry] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="log-bar"):
            yield Label("Event log", id="log-title")
            yield Label("level", id="log-level-label")
            yield Select(FILTERS, value=self.minimum, allow_blank=False, compact=True, id="log-level")
        yield LogLines(self._line, id="log-lines")

    def add(self, entries: Iterable[LogEntry], *, defer: bool = False) -> None:
        """Keep ``entries``; show them now, or with the next :meth:`write_pending` when ``defer``."""
        for entry in entries:
            self.entries.append(entry)
            if self._passes(entry):
                self._unwritten.append(entry)
        if not defer:
            self.write_pending()

    def write_pending(self) -> None:
        """Show the entries kept since the last write, in one repaint of the log."""
        if self._unwritten:
            lines, self._unwritten = self._unwritten[-KEEP:], []
            self.query_one(LogLines).extend(lines)

    def set_level(self, level: Level) -> None:
        """Show entries at ``level`` and above ("debug" shows all)."""
        if level == self.minimum:
            return
        self.minimum = level
        select = self.query_one("#log-level", Select)
        if select.value != level:
            with self.prevent(Select.Changed):
                select.value = level
        log = self.query_one(LogLines)
        log.clear()
        self._unwritten = []
        log.extend(entry for entry in self.entries if self._passes(entry))

    def shown_lines(self) -> list[str]:
        """The plain text of what the log currently shows (for tests and screenshots)."""
        return [entry.text for entry in self.entries if self._passes(entry)]

    def _passes(self, entry: LogEntry) -> bool:
        return LEVELS.index(entry.level) >= LEVELS.index(self.minimum)

    @staticmethod
    def _line(entry: LogEntry) -> Text:
        colour = LEVEL_STYLE[entry.level]
        line = Text.assemble(
            (fmt.clock_time(entry.at), fmt.MUTED),
            " ",
            (f"{entry.level.upper():<5}", f"bold {colour}"),
            " ",
        )
        line.append(f"{fmt.truncate(entry.project, 14):<14} " if entry.project else " " * 15, style=fmt.IDLE)
        line.append(entry.text, style=fmt.ERROR if entry.level == "error" else fmt.TEXT)
        return line

    @on(Select.Changed, "#log-level")
    def _level_changed(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str):
            self.set_level(normalize_level(event.value))
