"""Cockpit responsiveness: a keypress to the screen updating, while events pour in.

The real cockpit (``make_app``) runs headless (``App.run_test``) on the real gateway of
the sandbox's world (in-memory chat, scripted runs), loaded with sessions the gateway
opened and answered. A task drives traffic through it at a fixed rate of steps (a
member's message starts a run, the run reports progress twice, then answers: four steps
per session in turn, each publishing one or more core events), as a busy gateway would.
Meanwhile the benchmark presses Down/Up in the
sessions table (``App.simulate_key``) at irregular intervals and times each press to

* handled: the session detail pane shows the newly selected session, and
* on screen: the next frame the app renders after that (headless: rendered, not written).

    .venv/bin/python bench/cockpit.py [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bare_textual
from common import STATS_COLUMNS, Stats, Table, command_line, emit, parser, quiet_logging

from mpg_tui.core.api import SessionInfo
from mpg_tui.core.clock import FakeClock
from mpg_tui.sandbox.demo_world import crowded
from mpg_tui.sandbox.world import World
from mpg_tui.tui.app import CockpitApp, make_app
from mpg_tui.tui.widgets.session_detail import SessionDetail

SIZE = (200, 50)
STEP_RATE = 200.0
PRESS_TIMEOUT_S = 5.0
MAX_TIMEOUTS = 3
STEPS_PER_SESSION = 4


async def busy_world(sessions: int, state_dir: Path) -> World:
    """The sandbox world with ``sessions`` answered threads over the demo's three projects."""
    return await crowded(state_dir, sessions, FakeClock(start=time.time()))


async def drive_traffic(world: World, sessions: Sequence[SessionInfo], rate: float, stop: asyncio.Event) -> int:
    """Take ``rate`` steps a second until ``stop``; returns how many core events they published."""
    published = 0

    def count(_event: object) -> None:
        nonlocal published
        published += 1

    stop_counting = world.bus.listen(count)
    steps = 0
    started = time.perf_counter()
    try:
        while not stop.is_set():
            due = int((time.perf_counter() - started) * rate)
            while steps < due:
                info = sessions[(steps // STEPS_PER_SESSION) % len(sessions)]
                step = steps % STEPS_PER_SESSION
                if step == 0:
                    await world.ask(info.thread_id, "keep the lights on")
                elif step in (1, 2):
                    world.progress(info.key, f"src/module_{steps % 97}.py", tool="Read" if step == 1 else "Edit")
                else:
                    await world.finish(info.key, "Done.")
                world.clock.advance(1 / rate)
                steps += 1
                # One step at a time, as messages and runner output arrive: a catch-up burst
                # would hold the shared event loop longer than any real traffic does.
                await asyncio.sleep(0)
            await asyncio.sleep(0.005)
    finally:
        stop_counting()
    return published


@dataclass
class Press:
    """What one keypress is waiting for."""

    from_key: str | None
    started: float
    handled: float | None = None
    drawn: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class PressTimer:
    """Times keypresses by watching the detail pane and the app's frames."""

    def __init__(self, app: CockpitApp) -> None:
        self.app = app
        self.current: Press | None = None
        self.detail = app.main.query_one(SessionDetail)
        show = self.detail.show

        def timed_show(info: SessionInfo | None, *args: Any, **kwargs: Any) -> None:
            show(info, *args, **kwargs)
            press = self.current
            if press is not None and press.handled is None and info is not None and info.key != press.from_key:
                press.handled = time.perf_counter()

        self.detail.show = timed_show  # type: ignore[method-assign]
        app.post_display_hook = self._frame  # type: ignore[method-assign]

    def _frame(self) -> None:
        press = self.current
        if press is not None and press.handled is not None and press.drawn is None:
            press.drawn = time.perf_counter()
            press.done.set()

    async def press(self, key: str, timeout: float) -> Press:
        """Press ``key``; the result has no ``drawn`` time if the screen did not follow in ``timeout``."""
        press = Press(self.app.main.selected_key, time.perf_counter())
        self.current = press
        self.app.simulate_key(key)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(press.done.wait(), timeout)
        self.current = None
        return press

    async def series(self, presses: int, timeout: float, rng: random.Random) -> Presses:
        """Down and up in turn, at random gaps off the 0.1 s refresh beat; stops after MAX_TIMEOUTS misses."""
        done = Presses()
        for i in range(presses):
            await asyncio.sleep(rng.uniform(0.03, 0.12))
            press = await self.press("down" if i % 2 == 0 else "up", timeout)
            if press.handled is None or press.drawn is None:
                done.lost += press.handled is None
                done.slow += press.handled is not None
                if done.lost + done.slow >= MAX_TIMEOUTS:
                    break
                continue
            done.handled.append(press.handled - press.started)
            done.drawn.append(press.drawn - press.started)
        return done


@dataclass
class Presses:
    """Press-to-handled and press-to-drawn times of a series, and the presses that missed."""

    handled: list[float] = field(default_factory=list)
    drawn: list[float] = field(default_factory=list)
    lost: int = 0
    slow: int = 0


@dataclass
class KeyLatency:
    sessions: int
    rate: float
    handled: list[float]
    drawn: list[float]
    lost: int
    """Presses that changed nothing within the time limit (the selection stayed where it was)."""
    slow: int
    """Presses handled, but not on screen within the time limit."""
    events: int
    batches: int
    seconds: float


async def key_latency(
    sessions: int, rate: float, presses: int, *, timeout: float = PRESS_TIMEOUT_S, seed: int = 7
) -> KeyLatency:
    """``presses`` Down/Up presses on a cockpit with ``sessions`` sessions under ``rate`` steps/s.

    A press that changes nothing within ``timeout`` counts as lost, one handled but not
    drawn in that time as slow; after :data:`MAX_TIMEOUTS` of them the run stops.
    """
    with tempfile.TemporaryDirectory(prefix="mpg-bench-") as state_dir:
        world = await busy_world(sessions, Path(state_dir))
        try:
            return await _key_latency(world, rate, presses, timeout, seed)
        finally:
            await world.close()


async def _key_latency(world: World, rate: float, presses: int, timeout: float, seed: int) -> KeyLatency:
    infos = world.gateway.sessions()
    app = make_app(world.gateway)
    rng = random.Random(seed)
    async with app.run_test(headless=True, size=SIZE) as pilot:
        await pilot.pause()
        timer = PressTimer(app)
        stop = asyncio.Event()
        load = asyncio.create_task(drive_traffic(world, infos, rate, stop)) if rate else None
        batches0 = app.batches_applied
        started = time.perf_counter()
        try:
            done = await timer.series(presses, timeout, rng)
        finally:
            stop.set()
            events = await load if load else 0
        seconds = time.perf_counter() - started
        batches = app.batches_applied - batches0
        # Let the last batch land before the app goes: one scheduled after unmount would fail.
        await pilot.pause(app.refresh_interval * 3)
    return KeyLatency(len(infos), rate, done.handled, done.drawn, done.lost, done.slow, events, batches, seconds)


def latency_rows(table: Table, result: KeyLatency, label: str) -> None:
    load = f"{result.events / result.seconds:.0f} ev/s, {result.batches / result.seconds:.1f} batches/s"
    load = load if result.events else "no events"
    missed = f"{result.lost} / {result.slow}"
    for stage, samples in (("handled", result.handled), ("on screen", result.drawn)):
        cells = Stats.ms(samples).cells() if samples else ["-", "-", "-", "-", "0"]
        table.add(f"{label} · {stage}", *cells, missed, load)
        load = missed = ""


def bare_rows(table: Table, result: bare_textual.BarePresses, label: str) -> None:
    load = f"{result.updates / result.seconds:.0f} cell updates/s" if result.updates else "no updates"
    missed = f"{result.lost} / 0"
    for stage, samples in (("handled", result.handled), ("on screen", result.drawn)):
        cells = Stats.ms(samples).cells() if samples else ["-", "-", "-", "-", "0"]
        table.add(f"{label} · {stage}", *cells, missed, load)
        load = missed = ""


def key_table(
    title: str,
    results: Sequence[tuple[str, KeyLatency]],
    notes: list[str],
    yardstick: Sequence[tuple[str, bare_textual.BarePresses]] = (),
) -> Table:
    table = Table(
        title, ["cockpit · press to", *STATS_COLUMNS, "lost / slow", "load applied"], command_line(), notes=notes
    )
    for label, result in results:
        latency_rows(table, result, label)
    for label, bare in yardstick:
        bare_rows(table, bare, label)
    return table


NOTES = [
    "handled: the detail pane shows the new selection; on screen: the next frame rendered after it. Textual "
    "renders at most 60 frames a second, so up to ~17 ms of 'on screen' is waiting for the frame.",
    "traffic runs through the real gateway: a message, two progress lines and an answer per session in turn; "
    "events arrive through the bus listener and are applied in batches of at most one per 100 ms "
    "(refresh_interval); 'load applied' is what the app got during the presses.",
    f"lost: presses after which the selection had not moved {PRESS_TIMEOUT_S:g} s later; slow: handled but not "
    f"drawn within {PRESS_TIMEOUT_S:g} s; n counts the others (after {MAX_TIMEOUTS} misses the run stops).",
    "bare Textual app: the yardstick (bench/bare_textual.py), one 1000-row DataTable and a detail pane, nothing "
    "else; its cells updated at the step rate in one batch every 100 ms. What it needs is Textual's own cost here.",
]


async def main_async(quick: bool, json_path: Path | None) -> None:
    presses = 20 if quick else 100
    sessions = 1000
    results = [
        (f"{sessions} sessions, {STEP_RATE:.0f} steps/s", await key_latency(sessions, STEP_RATE, presses)),
        (f"{sessions} sessions, idle", await key_latency(sessions, 0.0, presses)),
    ]
    yardstick = [
        (
            f"bare Textual app, {STEP_RATE:.0f} steps/s",
            await bare_textual.key_latency(sessions, STEP_RATE, presses, size=SIZE, timeout=PRESS_TIMEOUT_S),
        ),
        (
            "bare Textual app, idle",
            await bare_textual.key_latency(sessions, 0.0, presses, size=SIZE, timeout=PRESS_TIMEOUT_S),
        ),
    ]
    title = "Cockpit: keypress to screen (Down/Up in the sessions table)"
    emit([key_table(title, results, NOTES, yardstick)], json_path)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    quiet_logging()
    asyncio.run(main_async(args.quick, args.json))


if __name__ == "__main__":
    main()
