"""What a config reload changes under a running gateway (the process-level fault is in test_gateway_faults)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from mpg_tui.config import GatewayConfig, parse_config
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.session_state import TurnOutcome
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.store import SessionStore
from tests.faults.conftest import StartWorld
from tests.unit.fake_runner import FakeRunner

CHANNEL = "123456789012345678"


def config_with(directory: Path, **defaults: Any) -> GatewayConfig:
    return parse_config({"defaults": defaults, "projects": {CHANNEL: {"directory": str(directory)}}})


async def test_a_reloaded_run_limit_lets_waiting_runs_in_at_once_and_a_lower_one_lets_runs_finish(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    runner = FakeRunner()
    config = config_with(tmp_path, maxConcurrentSessions=1)
    manager = SessionManager(
        config=config,
        store=SessionStore(tmp_path / "sessions.json", clock=clock),
        runners={"direct": runner},
        bus=EventBus(),
        clock=clock,
        worktrees=None,
    )
    view = config.project(CHANNEL)
    assert view is not None
    keys = ["t0", "t1", "t2", "t3"]
    held = {key: runner.hold(key) for key in keys}
    tasks: dict[str, asyncio.Task[TurnOutcome]] = {
        key: asyncio.create_task(manager.submit(key, view, key, "work")) for key in keys
    }
    await runner.wait_running(key="t0")
    assert runner.running == ["t0"]

    manager.reload(config_with(tmp_path, maxConcurrentSessions=3))
    await runner.wait_running(3)
    assert sorted(runner.running) == ["t0", "t1", "t2"]

    manager.reload(config_with(tmp_path, maxConcurrentSessions=1))
    for key in ("t0", "t1"):
        held[key].release()
        await tasks[key]
    assert runner.running == ["t2"]  # two slots went away with the finished runs; t3 still waits
    held["t2"].release()
    await tasks["t2"]
    await runner.wait_running(key="t3")
    held["t3"].release()
    assert (await tasks["t3"]).result.ok
    await manager.close()


async def test_a_reload_that_changes_start_up_settings_says_they_need_a_restart(
    start_world: StartWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world = await start_world({"work": {}})
    config = world.profile.config_path
    config.write_text(config.read_text(encoding="utf-8").replace('"httpPort": false', '"httpPort": 3999'))

    assert await world.runtime.reload_config()

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "Config reload: these settings take effect only after a restart: http_port" in warnings
    assert world.runtime.dashboard is None  # nothing was started on the new port
    await world.still_serves("work", "still serving")
