"""Fixtures for the dashboard: the real gateway on in-memory adapters and a fake clock, a real server on 127.0.0.1:0."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mpg_tui.core.clock import FakeClock
from mpg_tui.core.gateway import Gateway
from mpg_tui.dashboard import Dashboard
from mpg_tui.sandbox.world import World

TOKEN = "s3cret-dashboard-token-0123456789"
WEB = "111111111111111111"
API = "222222222222222222"
UPTIME_S = 90

DEFAULT_CONFIG: dict[str, Any] = {
    "defaults": {"dashboardToken": "config-secret-token-value", "httpPort": 3100},
    "projects": {
        WEB: {
            "name": "web-app",
            "directory": "/srv/projects/web-app",
            "agents": ["pm", "engineer"],
            "allowedRoles": ["dev"],
            "rateLimitPerUser": 10,
        },
        API: {"name": "api", "directory": "/srv/projects/api", "persistence": "tmux"},
    },
}

MakeWorld = Callable[..., World]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_world(clock: FakeClock, tmp_path: Path) -> AsyncIterator[MakeWorld]:
    """Worlds on the shared clock, each closed at the end of the test."""
    made: list[World] = []

    def make(config: dict[str, Any] | None = None) -> World:
        state_dir = tmp_path / f"world-{len(made)}"
        state_dir.mkdir()
        world = World(config if config is not None else DEFAULT_CONFIG, state_dir, clock=clock)
        world.connect("ready")
        made.append(world)
        return world

    yield make
    for world in made:
        await world.close()


@pytest.fixture
def world(make_world: MakeWorld, clock: FakeClock) -> World:
    """The gateway of :data:`DEFAULT_CONFIG`, up for a minute and a half."""
    world = make_world()
    clock.advance(UPTIME_S)
    return world


@pytest.fixture
def core(world: World) -> Gateway:
    return world.gateway


@pytest.fixture
async def dashboard(core: Gateway, clock: FakeClock) -> AsyncIterator[Dashboard]:
    async with Dashboard(core, port=0, clock=clock) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get_json(client: aiohttp.ClientSession, dashboard: Dashboard, path: str, **kwargs: Any) -> Any:
    async with client.get(dashboard.url + path.lstrip("/"), **kwargs) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("application/json")
        return await response.json()


@dataclass
class Frame:
    """One server-sent-events block: its ``event:`` name, joined ``data:`` lines and comments."""

    event: str | None = None
    data: str | None = None
    comments: list[str] = field(default_factory=list)
    retry: int | None = None

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


async def next_frame(response: aiohttp.ClientResponse) -> Frame:
    """Read lines up to the next blank line (the end of an event) and parse them."""
    frame = Frame()
    data: list[str] = []
    while True:
        raw = await response.content.readline()
        if not raw:
            raise EOFError("event stream closed")
        line = raw.decode("utf-8").rstrip("\n")
        if line == "":
            if data:
                frame.data = "\n".join(data)
            return frame
        if line.startswith(":"):
            frame.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            frame.event = value
        elif name == "data":
            data.append(value)
        elif name == "retry":
            frame.retry = int(value)


async def next_event(response: aiohttp.ClientResponse) -> Frame:
    """The next frame that carries an event (skipping heartbeats)."""
    while True:
        frame = await next_frame(response)
        if frame.event is not None:
            return frame
