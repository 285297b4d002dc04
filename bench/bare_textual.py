"""The least a Textual app can do for this screen: the yardstick of ``bench/cockpit.py``.

One 1000-row ``DataTable`` (the sessions) and a ``Static`` (the detail of the highlighted
row) at the cockpit's size, headless, nothing else: no core, no event log, no chains.
Under load it takes the cockpit's policy, at best: what arrived is applied in one batch
at most every 100 ms (``refresh_interval``), here one cell per step. A keypress is timed
as the cockpit's are: to the detail showing the new row (handled), then to the next frame
(on screen). What this app needs is what Textual itself needs on this machine; the
cockpit's own share is the difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field

from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Static

BATCH_S = 0.1
STATES = ("running", "Read", "Edit", "idle")


class BareApp(App[None]):
    CSS = "DataTable { width: 2fr; } #detail { width: 1fr; border: round $accent; }"

    def __init__(self, rows: int) -> None:
        super().__init__()
        self.rows = rows
        self.handled = asyncio.Event()
        self.handled_at = 0.0

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            yield DataTable(cursor_type="row")
            yield Static("", id="detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("project", "thread", "state", "runs", "cost", "last reply")
        for i in range(self.rows):
            table.add_row("webshop", f"thread {i}", "idle", str(i % 7), f"${i / 100:.2f}", "Done.", key=str(i))
        table.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = str(event.row_key.value)
        lines = "\n".join(f"line {j} of session {key}" for j in range(20))
        self.query_one("#detail", Static).update(f"session {key}\n{lines}")
        self.handled_at = time.perf_counter()
        self.handled.set()


@dataclass
class BarePresses:
    handled: list[float] = field(default_factory=list)
    drawn: list[float] = field(default_factory=list)
    lost: int = 0
    updates: int = 0
    seconds: float = 0.0


async def _traffic(app: BareApp, rate: float, stop: asyncio.Event) -> int:
    table = app.query_one(DataTable)
    column = list(table.columns)[2]
    steps = 0
    started = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(BATCH_S)
        due = int((time.perf_counter() - started) * rate)
        with app.batch_update():
            while steps < due:
                table.update_cell(str((steps // 4) % app.rows), column, STATES[steps % 4])
                steps += 1
    return steps


async def key_latency(
    rows: int, rate: float, presses: int, *, size: tuple[int, int], timeout: float, seed: int = 7
) -> BarePresses:
    """``presses`` Down/Up presses at the cockpit's random gaps, with ``rate`` cell updates a second."""
    app = BareApp(rows)
    result = BarePresses()
    drawn = asyncio.Event()
    drawn_at = 0.0
    waiting_for_frame = False

    def frame() -> None:
        nonlocal drawn_at
        if waiting_for_frame and app.handled.is_set() and not drawn.is_set():
            drawn_at = time.perf_counter()
            drawn.set()

    async with app.run_test(headless=True, size=size) as pilot:
        await pilot.pause()
        app.post_display_hook = frame  # type: ignore[method-assign]
        stop = asyncio.Event()
        load = asyncio.create_task(_traffic(app, rate, stop)) if rate else None
        rng = random.Random(seed)
        started = time.perf_counter()
        try:
            for i in range(presses):
                await asyncio.sleep(rng.uniform(0.03, 0.12))
                app.handled.clear()
                drawn.clear()
                waiting_for_frame = True
                pressed = time.perf_counter()
                app.simulate_key("down" if i % 2 == 0 else "up")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(app.handled.wait(), timeout)
                    await asyncio.wait_for(drawn.wait(), timeout)
                    result.handled.append(app.handled_at - pressed)
                    result.drawn.append(drawn_at - pressed)
                    continue
                result.lost += 1
        finally:
            waiting_for_frame = False
            stop.set()
            result.updates = await load if load else 0
        result.seconds = time.perf_counter() - started
    return result
