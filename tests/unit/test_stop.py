"""``!stop``: stopping a turn without ending its session, from the session manager to the thread."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mpg_tui.config import parse_config
from mpg_tui.core.commands import CommandResult, handle_command, parse_command
from mpg_tui.core.runner import INTERRUPTED_ERROR, RunResult
from tests.unit.test_commands import FakeSessions, ctx
from tests.unit.test_commands import session as info
from tests.unit.test_sessions import Harness


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


async def test_stop_interrupts_the_turn_and_keeps_the_session(h: Harness) -> None:
    await h.submit("111")
    run = h.runner.hold(key="111")
    task = h.submit("111", "a long one")
    await run.started.wait()

    assert await h.manager.stop("111")
    outcome = await task

    assert outcome.result.error_kind == "interrupted" and outcome.result.error == INTERRUPTED_ERROR
    assert h.runner.interrupt_calls == ["111"]
    assert outcome.session.session_id == "session-1", "the claude session is kept"
    await h.submit("111", "go on")
    assert h.runner.requests[-1].session_id == "session-1"


async def test_stop_leaves_the_queued_prompts_to_run(h: Harness) -> None:
    run = h.runner.hold(key="111")
    first = h.submit("111", "first")
    await run.started.wait()
    second = h.submit("111", "second")
    await asyncio.sleep(0)  # let it queue

    await h.manager.stop("111")

    assert (await first).result.error_kind == "interrupted"
    assert (await second).result.ok


async def test_stop_with_nothing_running_says_so(h: Harness) -> None:
    await h.submit("111")
    assert not await h.manager.stop("111")
    assert not await h.manager.stop("unknown")
    assert h.runner.interrupt_calls == []


async def test_a_runner_that_ends_the_process_still_reads_as_stopped(h: Harness) -> None:
    # A one-turn runner (tmux) ends the process: its result says cancelled; the thread hears "stopped".
    h.runner.script(RunResult(ok=False, error="killed", error_kind="cancelled"), key="111", hold=True)
    task = h.submit("111")
    await h.runner.wait_running(key="111")
    h.manager._sessions["111"].stop_requested = True
    h.runner._running["111"].release()

    assert (await task).result.error_kind == "interrupted"


async def test_a_stopped_turn_is_not_retried_fresh(h: Harness) -> None:
    await h.submit("111")
    h.runner.script(RunResult(ok=False, error="boom", error_kind="crash"), key="111", hold=True)
    task = h.submit("111")
    await h.runner.wait_running(key="111")
    h.manager._sessions["111"].stop_requested = True
    h.runner._running["111"].release()

    assert (await task).result.error_kind == "interrupted"
    assert len(h.runner.requests) == 2, "no fresh retry after a stop"


async def test_the_next_turn_starts_without_the_old_stop(h: Harness) -> None:
    run = h.runner.hold(key="111")
    task = h.submit("111")
    await run.started.wait()
    await h.manager.stop("111")
    await task
    h.runner.script(RunResult(ok=False, error="boom", error_kind="api"), key="111")

    assert (await h.submit("111")).result.error_kind == "api"


async def test_restart_closes_the_warm_process(h: Harness) -> None:
    await h.submit("111")
    await h.manager.restart("111")
    assert h.runner.released == ["111"]


def test_warm_is_on_by_default_and_per_project(tmp_path: Path) -> None:
    config = parse_config(
        {
            "defaults": {"maxConcurrentSessions": 3},
            "projects": {"1": {"directory": str(tmp_path)}, "2": {"directory": str(tmp_path), "warm": False}},
        }
    )
    assert config.defaults.warm and config.defaults.warm_idle_ms == 600_000
    assert config.warm_processes_limit == 3
    one, two = config.project("1"), config.project("2")
    assert one is not None and one.warm and two is not None and not two.warm
    limited = parse_config({"defaults": {"warm": False, "warmIdleMs": 1000, "maxWarmProcesses": 7}})
    assert not limited.defaults.warm and limited.defaults.warm_idle_ms == 1000 and limited.warm_processes_limit == 7


async def test_warm_reaches_the_runner(tmp_path: Path) -> None:
    cold = Harness(tmp_path, warm=False)
    await cold.submit("111")
    (tmp_path / "other").mkdir()
    h = Harness(tmp_path / "other")
    await h.submit("111")
    assert not cold.runner.requests[-1].warm and h.runner.requests[-1].warm


# -- the command ---------------------------------------------------------------------------


def test_stop_is_a_builtin() -> None:
    command = parse_command("!stop", {})
    assert command is not None and getattr(command, "name", None) == "stop"


async def test_stop_in_a_thread_stops_its_running_sessions() -> None:
    control = FakeSessions(info("555", state="running"), info("555:pm", state="idle"))
    result = await handle_command("!stop", ctx(thread="555"), control)
    assert isinstance(result, CommandResult)
    assert control.stopped == ["555"]
    assert "Stopping the turn of `555`" in result.text


async def test_stop_with_nothing_running_stops_nothing() -> None:
    control = FakeSessions(info("555", state="idle"))
    result = await handle_command("!stop", ctx(thread="555"), control)
    assert isinstance(result, CommandResult) and "nothing is running" in result.text
    assert control.stopped == []


async def test_stop_in_a_channel_needs_a_name() -> None:
    result = await handle_command("!stop", ctx(), FakeSessions())
    assert isinstance(result, CommandResult) and "Usage: `!stop <name>`" in result.text
