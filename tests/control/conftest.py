"""Fixtures for the control API's tests: the real core on a scripted runner and an in-memory chat,
its control socket, and the dashboard's HTTP door with a token."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mpg_tui.config import parse_config
from mpg_tui.control.client import Endpoint
from mpg_tui.control.journal import EventJournal
from mpg_tui.control.server import ControlService, socket_path
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import SystemClock
from mpg_tui.core.gateway import Gateway
from mpg_tui.core.ports import InboundMessage
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.store import SessionStore
from mpg_tui.dashboard.server import Dashboard
from mpg_tui.sandbox.inmemory import InMemoryChat
from tests.unit.fake_runner import FakeRunner

CHANNEL = "123456789012345678"
BOT_TOKEN = "bot-token-that-must-never-cross-0123456789"
DASHBOARD_TOKEN = "dashboard-token-0123456789abcdef"


@dataclass
class World:
    gateway: Gateway
    sessions: SessionManager
    runner: FakeRunner
    bus: EventBus
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1_000_000_000_000_000_001))

    async def open_thread(self, content: str) -> str:
        """Post ``content`` in the project's channel; the ID of the thread it opens."""
        message_id = str(next(self._ids))
        await self.gateway.handle_message(
            InboundMessage(id=message_id, channel_id=CHANNEL, author_id="7", author_name="ann", content=content)
        )
        return message_id


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    config = parse_config(
        {
            "defaults": {"dashboardToken": DASHBOARD_TOKEN},
            "projects": {CHANNEL: {"name": "shop", "directory": str(tmp_path), "worktrees": False}},
        }
    )
    clock, bus, runner = SystemClock(), EventBus(), FakeRunner()
    sessions = SessionManager(
        config=config,
        store=SessionStore(tmp_path / "sessions.json", clock=clock),
        runners={"direct": runner},
        bus=bus,
        clock=clock,
        worktrees=None,
    )
    gateway = Gateway(config=config, sessions=sessions, bus=bus, clock=clock, chat=InMemoryChat())
    yield World(gateway, sessions, runner, bus)
    await sessions.close()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
async def control(world: World, run_dir: Path) -> AsyncIterator[ControlService]:
    journal = EventJournal(world.gateway, redact=(BOT_TOKEN, DASHBOARD_TOKEN))
    service = ControlService(world.gateway, journal, socket_file=socket_path(run_dir))
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
def local(control: ControlService) -> Endpoint:
    assert control.socket_file is not None
    return Endpoint(url=f"unix:{control.socket_file}")


@pytest.fixture
async def dashboard(world: World, control: ControlService) -> AsyncIterator[Dashboard]:
    async with Dashboard(world.gateway, port=0, token=DASHBOARD_TOKEN, control=control) as board:
        yield board
