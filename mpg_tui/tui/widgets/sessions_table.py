"""Every session the gateway knows, one row each, updated cell by cell.

Rows are keyed by session key. A batch of changes touches only the cells whose text
changed, adds or removes only the rows that came or went, and re-sorts only when the
sort column moved, so a thousand sessions under a stream of events stay cheap. The
cursor follows the selected session across re-sorts: the row an operator is about to
kill must not change under them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, NamedTuple

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.geometry import Offset, Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowDoesNotExist, RowKey

from mpg_tui.core.api import SessionInfo
from mpg_tui.tui import formatting as fmt
from mpg_tui.tui.model import STATE_RANK, matches


class Column(NamedTuple):
    key: str
    label: str
    width: int
    right: bool = False


# The columns that matter most come first: a narrow terminal scrolls the rest.
COLUMNS = (
    Column("key", "Session", 28),
    Column("thread", "Thread", 20),
    Column("state", "State", 12),
    Column("agent", "Agent", 10),
    Column("project", "Project", 14),
    Column("queue", "Queue", 5, right=True),
    Column("last", "Active", 8),
    Column("session_id", "Session ID", 10),
    Column("runner", "Runner", 6),
    Column("cost", "Cost", 8, right=True),
    Column("tokens", "Tokens", 7, right=True),
)
LAST_COLUMN = [c.key for c in COLUMNS].index("last")
CACHED_ROWS = 300
"""Rendered rows (and lines) kept: several screens of scrolling back and forth."""


def _same(a: Text, b: Text) -> bool:
    # Text equality ignores the base style, and a colour change alone must be redrawn.
    return a.plain == b.plain and a.style == b.style and a.spans == b.spans


class SessionsTable(DataTable[Text]):
    # Enter jumps into the session; a mouse click only selects. (DataTable's own enter
    # "selects", and so does a click on the current row: jumping on a click would
    # suspend the cockpit by surprise.)
    BINDINGS = [Binding("enter", "jump", "Jump in", show=False)]

    @dataclass
    class Selected(Message):
        """The highlighted session changed (None: the table is empty)."""

        key: str | None

    @dataclass
    class JumpRequested(Message):
        key: str

    def __init__(self, project_names: Mapping[str, str], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.project_names = dict(project_names)
        self.thread_names: dict[str, str] = {}
        self._infos: dict[str, SessionInfo] = {}
        self._shown: dict[str, tuple[Text, ...]] = {}
        self._query = ""
        self._sort_column = "project"
        self._reverse = False
        self._now = 0.0
        self._selected: str | None = None
        self._reshaping = 0
        """Non-zero while our own updates move rows (and so maybe the cursor)."""
        self._touched: set[str] = set()
        """Rows whose cells changed since the last :meth:`_repaint_rows`."""
        self._stale_off_screen = False
        self._window: tuple[Offset, Size] | None = None
        """Scroll offset and size at the last render."""
        # DataTable keeps up to 10,000 rendered cells and 1,000 rendered rows and lines.
        # With rows changed by events they fill with renderings of rows long off the
        # screen, or long changed: tens of thousands of objects that every full garbage
        # collection walks. A few screens' worth is as fast to scroll over.
        self._cell_render_cache = LRUCache(CACHED_ROWS * len(COLUMNS))
        self._row_render_cache = LRUCache(CACHED_ROWS)
        self._row_renderable_cache = LRUCache(CACHED_ROWS)
        self._line_cache = LRUCache(CACHED_ROWS)

    def on_mount(self) -> None:
        for column in COLUMNS:
            label = Text(column.label, justify="right" if column.right else "left")
            self.add_column(label, width=column.width, key=column.key)
        self._rebuild()

    # -- what others read ------------------------------------------------------------

    @property
    def selected_key(self) -> str | None:
        return self._selected

    @property
    def filter_query(self) -> str:
        return self._query

    def visible_keys(self) -> list[str]:
        """Keys in display order."""
        return [str(self.coordinate_to_cell_key(Coordinate(i, 0)).row_key.value) for i in range(self.row_count)]

    # -- what the screen calls -----------------------------------------------------

    def load(self, sessions: Iterable[SessionInfo], now: float) -> None:
        self._now = now
        self._infos = {s.key: s for s in sessions}
        if self.is_mounted:
            self._rebuild()

    def apply(self, changed: Iterable[SessionInfo], removed: Iterable[str], now: float) -> None:
        """Bring the rows in line with new snapshots of ``changed`` and the end of ``removed``."""
        with self._reshape():
            self._apply(changed, removed, now)

    def _apply(self, changed: Iterable[SessionInfo], removed: Iterable[str], now: float) -> None:
        self._now = now
        resort = False
        sort_value = self._sort_value(self._sort_column)
        for key in removed:
            self._infos.pop(key, None)
            self._drop_row(key)
        for info in changed:
            previous = self._infos.get(info.key)
            self._infos[info.key] = info
            if not self._visible(info):
                self._drop_row(info.key)
                continue
            cells = self._cells(info)
            old = self._shown.get(info.key)
            if old is None:
                self.add_row(*cells, key=info.key)
                resort = True
            else:
                updates = [
                    (column.key, after)
                    for column, before, after in zip(COLUMNS, old, cells, strict=True)
                    if not _same(before, after)
                ]
                if updates:
                    self._update_row(info.key, updates)
                resort = resort or previous is None or sort_value(previous) != sort_value(info)
            self._shown[info.key] = cells
        if resort:
            self._sort()
        self._repaint_rows()
        self._follow_selection()

    def name_threads(self, names: Mapping[str, str]) -> None:
        """Learn thread names (from ThreadOpened) and show them on the rows of those threads."""
        self.thread_names.update(names)
        named = [info for info in self._infos.values() if info.thread_id in names]
        if named:
            self.apply(named, (), self._now)
            if self._sort_column == "thread":
                with self._reshape():
                    self._sort()
                    self._follow_selection()

    def set_filter(self, query: str) -> None:
        if query.strip() != self._query:
            self._query = query.strip()
            self._rebuild()

    def sort_by(self, column: str) -> None:
        """Sort by ``column``; sorting by the same column again reverses the order."""
        if column == self._sort_column:
            self._reverse = not self._reverse
        else:
            self._sort_column, self._reverse = column, column in ("last", "cost", "tokens", "queue", "state")
        with self._reshape():
            self._sort()
            self._follow_selection()

    def refresh_times(self, now: float) -> None:
        """Rewrite the "last activity" cells whose wording changed (``5s ago`` -> ``6s ago``)."""
        self._now = now
        for key, cells in self._shown.items():
            text = self._last_cell(self._infos[key])
            if not _same(text, cells[LAST_COLUMN]):
                self._update_row(key, [("last", text)])
                self._shown[key] = (*cells[:LAST_COLUMN], text, *cells[LAST_COLUMN + 1 :])
        self._repaint_rows()

    def select_key(self, key: str) -> bool:
        """Move the cursor to ``key``'s row; False when it is not shown."""
        if key not in self._shown:
            return False
        self.move_cursor(row=self.get_row_index(key))
        return True

    # -- internals -----------------------------------------------------------------

    def _visible(self, info: SessionInfo) -> bool:
        return not self._query or matches(
            info,
            self._query,
            project_name=self.project_names.get(info.project_key, ""),
            thread_name=self.thread_names.get(info.thread_id, ""),
        )

    def _update_row(self, key: str, cells: Iterable[tuple[str, Text]]) -> None:
        """Put new values in ``key``'s cells, repainting only that row, and only if it is on screen.

        ``update_cell`` refreshes the whole table and moves on its render generation, so
        every visible row is rendered again, and again at each later repaint of the table
        (its border titles, a focus change): with a thousand rows under a stream of events
        that was most of the cockpit's frame time, though most changes are off screen.
        A row changed off screen keeps the generation; :meth:`render_lines` moves it on
        when the view moves, before such a row can be drawn from a stale cache.
        """
        row = self._data[RowKey(key)]  # DataTable's own cell store, as update_cell writes it
        for column, text in cells:
            row[ColumnKey(column)] = text
        self._touched.add(key)

    def _repaint_rows(self) -> None:
        """Repaint the rows :meth:`_update_row` changed that are on screen; mark the others stale."""
        touched, self._touched = self._touched, set()
        if not touched or not self.row_count:
            return
        top = self.scroll_offset.y
        bottom = top + self.size.height
        shown = [i for i in (self.get_row_index(k) for k in touched) if top - 1 <= i <= bottom]
        self._stale_off_screen = self._stale_off_screen or len(shown) < len(touched)
        if shown:
            self._update_count += 1  # DataTable's render generation: its caches are keyed by it
            for index in shown:  # rows are one line high; refresh_row clips exactly
                self.refresh_row(index)

    def render_lines(self, crop: Region) -> list[Strip]:
        window = (self.scroll_offset, self.size)
        if self._stale_off_screen and window != self._window:
            # Rows changed while off screen may be in view now: render from the cells.
            self._update_count += 1
            self._stale_off_screen = False
        self._window = window
        return super().render_lines(crop)

    def _drop_row(self, key: str) -> None:
        self._touched.discard(key)
        if self._shown.pop(key, None) is not None:
            with suppress(RowDoesNotExist):  # _shown and the rows move together; belt and braces
                self.remove_row(key)

    def _rebuild(self) -> None:
        if not self.columns:
            return
        with self._reshape():
            self._rebuild_rows()

    def _rebuild_rows(self) -> None:
        self.clear()
        self._shown.clear()
        self._touched.clear()
        for info in self._infos.values():
            if self._visible(info):
                cells = self._cells(info)
                self.add_row(*cells, key=info.key)
                self._shown[info.key] = cells
        self._sort()
        self._follow_selection()

    def _sort(self) -> None:
        value = self._sort_value(self._sort_column)
        infos = self._infos
        self.sort("key", key=lambda cell: (value(infos[cell.plain]), cell.plain), reverse=self._reverse)

    def _sort_value(self, column: str) -> Callable[[SessionInfo], Any]:
        names = self.project_names
        by: dict[str, Callable[[SessionInfo], Any]] = {
            "key": lambda s: s.key,
            "thread": lambda s: self.thread_names.get(s.thread_id, "").lower(),
            "project": lambda s: names.get(s.project_key, s.project_key).lower(),
            "agent": lambda s: s.agent or "",
            "state": lambda s: STATE_RANK.get(s.state, -1),
            "queue": lambda s: s.queue_depth,
            "last": lambda s: s.last_activity,
            "session_id": lambda s: s.session_id or "",
            "runner": lambda s: s.runner,
            "cost": lambda s: s.cost_usd,
            "tokens": lambda s: s.input_tokens + s.output_tokens,
        }
        return by[column]

    def _follow_selection(self) -> None:
        """Keep the cursor on the selected session; if it is gone, select what is under the cursor."""
        if self._selected is not None and self._selected in self._shown:
            index = self.get_row_index(self._selected)
            if index != self.cursor_row:
                with self.prevent(DataTable.RowHighlighted):
                    self.move_cursor(row=index, animate=False)
            return
        current = self.key_at_cursor()
        if current != self._selected:
            self._selected = current
            self.post_message(self.Selected(current))

    def key_at_cursor(self) -> str | None:
        """The session under the cursor right now (``selected_key`` lags by a message)."""
        if not self.row_count:
            return None
        row = min(self.cursor_row, self.row_count - 1)
        return str(self.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value)

    def _cells(self, info: SessionInfo) -> tuple[Text, ...]:
        tokens = info.input_tokens + info.output_tokens
        return (
            Text(info.key, style=fmt.TEXT, no_wrap=True, overflow="ellipsis"),
            Text(self.thread_names.get(info.thread_id, ""), style=fmt.IDLE, no_wrap=True, overflow="ellipsis"),
            fmt.state_text(info.state, failed=info.last_error is not None),
            Text(info.agent or fmt.NONE, style=fmt.ACCENT if info.agent else fmt.MUTED),
            Text(self.project_names.get(info.project_key, info.project_key), no_wrap=True, overflow="ellipsis"),
            Text(
                str(info.queue_depth) if info.queue_depth else fmt.NONE,
                justify="right",
                style=fmt.QUEUED if info.queue_depth else fmt.MUTED,
            ),
            self._last_cell(info),
            Text(fmt.short_id(info.session_id), style=fmt.IDLE if info.session_id else fmt.MUTED),
            Text(info.runner, style=fmt.MUTED if info.runner == "direct" else fmt.ACCENT),
            Text(fmt.cost(info.cost_usd), justify="right", style=fmt.TEXT if info.cost_usd else fmt.MUTED),
            Text(fmt.tokens(tokens), justify="right", style=fmt.TEXT if tokens else fmt.MUTED),
        )

    def _last_cell(self, info: SessionInfo) -> Text:
        return Text(fmt.ago(self._now - info.last_activity), style=fmt.IDLE)

    @contextmanager
    def _reshape(self) -> Iterator[None]:
        self._reshaping += 1
        try:
            yield
        finally:
            self._reshaping -= 1

    def watch_cursor_coordinate(self, old_coordinate: Coordinate, new_coordinate: Coordinate) -> None:
        super().watch_cursor_coordinate(old_coordinate, new_coordinate)
        if self._reshaping or old_coordinate.row == new_coordinate.row:
            return
        # The operator moved the cursor: take the new selection now, not when RowHighlighted
        # arrives. A batch of events applied in between would otherwise put the cursor back
        # on the old selection and the keypress would be lost.
        key = self.key_at_cursor()
        if key != self._selected:
            self._selected = key
            self.post_message(self.Selected(key))

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        # The message may predate a re-sort (rows added, then sorted, before it arrives):
        # trust the cursor, not the row key it carries.
        key = self.key_at_cursor()
        if key != self._selected:
            self._selected = key
            self.post_message(self.Selected(key))

    def action_jump(self) -> None:
        if self._selected is not None:
            self.post_message(self.JumpRequested(self._selected))

    @on(DataTable.HeaderSelected)
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))
