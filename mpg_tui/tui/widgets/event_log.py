"""The event log: what the gateway did, newest at the bottom, filtered by level."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, RichLog, Select

from mpg_tui.tui import formatting as fmt
from mpg_tui.tui.digest import LEVELS, Level, LogEntry, normalize_level

KEEP = 2000
"""Entries kept for re-filtering; older ones are dropped."""

LEVEL_STYLE: dict[str, str] = {"debug": fmt.MUTED, "info": fmt.ACCENT, "warn": fmt.QUEUED, "error": fmt.ERROR}
FILTERS: list[tuple[str, Level]] = [("all", "debug"), ("info", "info"), ("warn", "warn"), ("error", "error")]


class EventLog(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: deque[LogEntry] = deque(maxlen=KEEP)
        self.minimum: Level = "info"
        self._unwritten: list[Text] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="log-bar"):
            yield Label("Event log", id="log-title")
            yield Label("level", id="log-level-label")
            yield Select(FILTERS, value=self.minimum, allow_blank=False, compact=True, id="log-level")
        yield RichLog(max_lines=KEEP, wrap=False, markup=False, highlight=False, id="log-lines")

    def add(self, entries: Iterable[LogEntry], *, defer: bool = False) -> None:
        """Keep ``entries``; show them now, or with the next :meth:`write_pending` when ``defer``."""
        for entry in entries:
            self.entries.append(entry)
            if self._passes(entry):
                self._unwritten.append(self._line(entry))
        if not defer:
            self.write_pending()

    def write_pending(self) -> None:
        """Show the entries kept since the last write, in one write.

        Each write grows the log, and so lays out the whole screen again: at a batch of
        events every 100 ms that was a layout every other frame, so batches are written
        together at a slower pace (the main screen decides when).
        """
        if self._unwritten:
            lines, self._unwritten = self._unwritten[-KEEP:], []
            self.query_one(RichLog).write(Text("\n").join(lines))

    def set_level(self, level: Level) -> None:
        """Show entries at ``level`` and above ("debug" shows all)."""
        if level == self.minimum:
            return
        self.minimum = level
        select = self.query_one("#log-level", Select)
        if select.value != level:
            with self.prevent(Select.Changed):
                select.value = level
        log = self.query_one(RichLog)
        log.clear()
        self._unwritten = []
        for entry in self.entries:
            if self._passes(entry):
                log.write(self._line(entry))

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
