"""Runs outlive the runner that started them, and a new runner picks them up (or cleans up)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from mpg_tui.runners.tmux import RunDetached
from tests.tmux.conftest import WAIT_S, ProgressLog, TmuxWorld, process_gone, tmux, until

KEY = "1001"


async def start_detached(world: TmuxWorld, prompt: str, **overrides: object) -> Path:
    """Start a run with one runner, wait for it to be under way, then close that runner."""
    runner = world.runner()
    progress = ProgressLog()
    run = asyncio.create_task(runner.run(world.request(prompt, **overrides), progress))
    await progress.first("init")
    await runner.close()
    with pytest.raises(RunDetached):
        await run
    return world.run_dir / runner.tmux_session(str(overrides.get("key", KEY)))


async def test_closing_the_runner_leaves_the_run_going_in_tmux(world: TmuxWorld) -> None:
    path = await start_detached(world, "[[error:hang]]")

    assert world.sessions() == [path.name]
    assert not (path / "exit.json").exists()


async def test_a_run_in_progress_is_recovered_by_a_new_runner_and_its_result_delivered(world: TmuxWorld) -> None:
    await start_detached(world, "carry on [[sleep:1]]", key="1001:engineer", thread_id="1001", project_key="42")

    runner = world.runner()
    [recovered] = await runner.recover({"1001:engineer": object()})
    assert recovered.key == "1001:engineer"
    assert recovered.state == "running"
    assert (recovered.request.thread_id, recovered.request.project_key) == ("1001", "42")
    assert recovered.request.cwd == world.project
    assert recovered.request.started_at == world.clock.now()

    progress = ProgressLog()
    result = await recovered.wait(progress)

    assert result.ok, result.error
    assert result.text == "[claude] carry on"
    assert any(p.step == "tool" for p in progress.seen)
    await runner.acknowledge("1001:engineer")
    assert world.sessions() == []
    assert world.run_files() == []


async def test_a_recovered_run_shows_as_running_and_obeys_its_timeout(world: TmuxWorld) -> None:
    await start_detached(world, "[[error:hang]]", timeout_s=30.0)
    [pid] = world.claude_pids()

    runner = world.runner()
    [recovered] = await runner.recover({KEY: None})
    progress = ProgressLog()
    waiting = asyncio.create_task(recovered.wait(progress))
    await progress.first("init")
    assert runner.running == [KEY]

    world.clock.advance(30.0)
    result = await waiting

    assert result.error_kind == "timeout"
    assert world.sessions() == []
    await until(lambda: process_gone(pid), what="the timed-out claude to end")


async def test_a_recovered_run_can_be_cancelled_before_anyone_waits_for_it(world: TmuxWorld) -> None:
    await start_detached(world, "[[error:hang]]")

    runner = world.runner()
    [recovered] = await runner.recover({KEY: None})
    assert await runner.cancel(KEY) is True
    assert world.sessions() == []

    result = await recovered.wait(ProgressLog())
    assert result.error_kind == "cancelled"


async def test_a_run_that_finished_while_nobody_watched_is_recovered_as_finished(world: TmuxWorld) -> None:
    path = await start_detached(world, "[[reply:done while you were away]] [[sleep:0.2]]")
    await until(lambda: (path / "exit.json").exists() and not world.sessions(), what="the run to finish")

    runner = world.runner()
    [recovered] = await runner.recover({KEY: None})
    assert recovered.state == "finished"
    progress = ProgressLog()
    result = await recovered.wait(progress)

    assert result.ok
    assert result.text == "done while you were away"
    assert progress.seen == []  # old progress is history, not news
    await runner.acknowledge(KEY)
    assert world.run_files() == []


async def test_an_unwatched_run_ends_itself_after_its_timeout_and_grace(world: TmuxWorld) -> None:
    runner = world.runner(grace_s=0.3)
    progress = ProgressLog()
    request = world.request("[[error:orphan]] [[error:hang]]", timeout_s=0.3)
    run = asyncio.create_task(runner.run(request, progress))
    await progress.first("init")
    await runner.close()
    with pytest.raises(RunDetached):
        await run
    pids = world.claude_pids()
    path = world.run_dir / runner.tmux_session(KEY)

    await until(lambda: (path / "exit.json").exists(), what="the wrapper's own deadline")
    [recovered] = await world.runner().recover({KEY: None})
    result = await recovered.wait(ProgressLog())

    assert recovered.state == "finished"
    assert result.error_kind == "timeout"
    await until(lambda: all(process_gone(pid) for pid in pids), what="claude's group to end")


async def test_a_run_that_died_without_a_result_is_reported_as_lost(world: TmuxWorld) -> None:
    path = await start_detached(world, "[[error:hang]]")
    pids = json.loads((path / "pid.json").read_text())
    os.killpg(pids["child_pid"], signal.SIGKILL)
    os.kill(pids["wrapper_pid"], signal.SIGKILL)  # as if the machine went down mid-run
    await until(lambda: not world.sessions(), what="the tmux session to end")

    runner = world.runner()
    [recovered] = await runner.recover({KEY: None})
    result = await recovered.wait(ProgressLog())

    assert recovered.state == "lost"
    assert result.error_kind == "crash"
    assert "lost" in (result.error or "")
    await runner.acknowledge(KEY)
    assert world.run_files() == []


async def test_recovery_kills_and_removes_whatever_belongs_to_no_known_session(world: TmuxWorld) -> None:
    await start_detached(world, "[[error:orphan]] [[error:hang]]", key="1001:pm")
    unknown_pids = world.claude_pids()
    kept = await start_detached(world, "[[error:hang]]", key="2002")
    world.run_dir.joinpath("mpg-0123456789").mkdir(mode=0o700)  # ours by its name, but unreadable
    world.run_dir.joinpath("mpg-0123456789", "request.json").write_text("{not json")
    world.run_dir.joinpath("notes.txt").write_text("not ours: left alone")
    assert tmux(world.socket, "new-session", "-d", "-s", "mpg-stray-abcdef0123", "sleep", "60").returncode == 0
    assert tmux(world.socket, "new-session", "-d", "-s", "operator", "sleep", "60").returncode == 0

    runner = world.runner()
    recovered = await runner.recover({"2002": None})

    assert [r.key for r in recovered] == ["2002"]
    assert sorted(world.sessions()) == sorted([kept.name, "operator"])
    assert sorted(p.name for p in world.run_dir.iterdir()) == sorted([kept.name, "notes.txt"])
    await until(lambda: all(process_gone(pid) for pid in unknown_pids), what="the unknown run's claude to end")
    assert await runner.cancel("2002")


SCRIPT = """
import asyncio, sys
from pathlib import Path
from mpg_tui.core.clock import SystemClock
from mpg_tui.core.runner import RunRequest
from mpg_tui.runners.tmux import TmuxRunner

async def main() -> None:
    socket, run_dir, shim, project, config = sys.argv[1:]
    runner = TmuxRunner(socket, Path(run_dir), clock=SystemClock())
    announced = False

    def on_progress(progress):
        nonlocal announced
        if progress.step == "tool" and not announced:
            announced = True
            print("running", flush=True)

    request = RunRequest(key="2002:engineer", cwd=Path(project), prompt="build it [[sleep:0.8]]", args=[],
                         command=(shim,), env={"CLAUDE_CONFIG_DIR": config}, timeout_s=60.0)
    await runner.run(request, on_progress)
    print("the run ended before the gateway was killed", flush=True)

asyncio.run(main())
"""


async def test_a_run_survives_a_sigkilled_gateway_process_and_is_recovered(world: TmuxWorld) -> None:
    gateway = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        world.socket,
        str(world.run_dir),
        str(world.shim),
        str(world.project),
        str(world.config_dir),
        stdout=asyncio.subprocess.PIPE,
    )
    assert gateway.stdout is not None
    line = await asyncio.wait_for(gateway.stdout.readline(), WAIT_S)
    assert line == b"running\n"
    gateway.kill()
    await gateway.wait()
    assert len(world.sessions()) == 1

    runner = world.runner()
    [recovered] = await runner.recover({"2002:engineer": None, "3003": None})
    assert recovered.state == "running"
    result = await recovered.wait(ProgressLog())

    assert result.ok, result.error
    assert result.text == "[claude] build it"
    await runner.acknowledge("2002:engineer")
    assert world.sessions() == []
    assert world.run_files() == []
