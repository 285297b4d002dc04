"""Fixtures for the cockpit's tests: the real gateway in the demo world on a frozen clock, and a recording launcher."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console, RenderableType
from textual.pilot import Pilot

from mpg_tui.core.clock import FakeClock
from mpg_tui.sandbox.demo_world import build_demo
from mpg_tui.sandbox.world import World
from mpg_tui.tui.app import CockpitApp


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The event log prints local times; pin the zone so output is the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def world(clock: FakeClock, tmp_path: Path) -> AsyncIterator[World]:
    """The demo gateway three hours into its day (see :mod:`mpg_tui.sandbox.demo_world`)."""
    world = await build_demo(tmp_path, clock)
    yield world
    await world.close()


@dataclass
class Launches:
    """A launcher that records what would have run instead of running it."""

    calls: list[tuple[list[str], str | None]] = field(default_factory=list)
    status: int = 0

    def __call__(self, argv: Sequence[str], cwd: str | None) -> int:
        self.calls.append((list(argv), cwd))
        return self.status


@pytest.fixture
def launches() -> Launches:
    return Launches()


@dataclass
class Notes:
    """Stands in for ``App.notify``: what the operator would have been told."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, message: str, *, title: str = "", severity: str = "information", **_: Any) -> None:
        self.calls.append((severity, f"{title}: {message}" if title else message))

    def text(self) -> str:
        return "\n".join(message for _, message in self.calls)


def installed(name: str) -> str:
    """A ``which`` that finds every program: the tests record launches instead of running them."""
    return f"/usr/bin/{name}"


@pytest.fixture
def make_app(world: World, clock: FakeClock, launches: Launches) -> Callable[..., CockpitApp]:
    def make(**kwargs: Any) -> CockpitApp:
        kwargs.setdefault("environ", {})
        kwargs.setdefault("launcher", launches)
        kwargs.setdefault("which", installed)
        return CockpitApp(world.gateway, clock=clock, **kwargs)

    return make


def watch_notes(app: CockpitApp) -> Notes:
    notes = Notes()
    app.notify = notes  # type: ignore[method-assign]
    return notes


async def settle(pilot: Pilot[Any], clock: FakeClock) -> None:
    """Let the app apply everything published so far.

    Batches are throttled by the app's clock; on a frozen clock the next batch waits until
    time moves, so move it past the throttle and let the messages drain.
    """
    await pilot.pause()
    clock.advance(1.0)
    await pilot.pause()


def plain(renderable: RenderableType | object, width: int = 160) -> str:
    """What a Rich renderable says, without styles."""
    console = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


async def until(pilot: Pilot[Any], condition: Callable[[], bool], *, pauses: int = 50) -> None:
    """Let the app process messages until ``condition`` holds (a chain of messages can take several rounds).

    One ``pilot.pause()`` judges "idle" by CPU time, which a busy machine fools; this asks
    for the state the test needs instead, and fails if it never comes.
    """
    for _ in range(pauses):
        if condition():
            return
        await pilot.pause()
    assert condition(), "the cockpit never reached the expected state"
