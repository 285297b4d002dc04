"""TmuxRunner against real tmux and the stand-in claude: runs, progress, quoting, timeout, cancel."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from tests.tmux.conftest import ProgressLog, TmuxWorld, process_gone, tmux, until


async def test_run_completes_with_the_agents_reply_and_acknowledge_leaves_nothing_behind(world: TmuxWorld) -> None:
    runner = world.runner()
    result = await runner.run(world.request("hello from the thread"), ProgressLog())

    assert result.ok, result.error
    assert result.text == "[claude] hello from the thread"
    assert result.session_id
    assert result.cost_usd > 0
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert result.exit_code == 0
    assert world.sessions() == []
    # The result is kept until it has been delivered...
    name = runner.tmux_session("1001")
    assert (world.run_dir / name / "exit.json").exists()

    await runner.acknowledge("1001")
    assert world.run_files() == []


async def test_run_files_are_private_to_the_user(world: TmuxWorld) -> None:
    runner = world.runner()
    await runner.run(world.request("private"), ProgressLog())

    run_path = world.run_dir / runner.tmux_session("1001")
    assert stat.S_IMODE(world.run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(run_path.stat().st_mode) == 0o700
    files = {path.name: stat.S_IMODE(path.stat().st_mode) for path in run_path.iterdir()}
    assert {"request.json", "prompt.txt", "out.ndjson", "err.log", "exit.json", "pid.json"} <= set(files)
    assert set(files.values()) == {0o600}


async def test_progress_arrives_while_the_run_is_still_going(world: TmuxWorld) -> None:
    runner = world.runner()
    progress = ProgressLog()
    run = asyncio.create_task(runner.run(world.request("think [[sleep:1]]"), progress))

    tool = await progress.first("tool")
    assert tool.tool == "Bash"
    assert not run.done()
    assert runner.running == ["1001"]

    result = await run
    assert result.ok
    steps = [p.step for p in progress.seen]
    assert steps[0] == "init" and steps[-1] == "text"
    assert steps.count("tool") >= 2


async def test_a_hostile_prompt_arrives_verbatim_and_nothing_in_it_runs(world: TmuxWorld, tmp_path: Path) -> None:
    prompt = (
        "-p --dangerously-skip-permissions \"double\" 'single' $(touch pwned1) `touch pwned2`\n"
        "second line; touch pwned3 && echo $HOME \\ \\\\ ' \" %s %n #{pane_pid} ;\n"
        "\t[[echo]]"
    )
    runner = world.runner()
    result = await runner.run(world.request(prompt), ProgressLog())

    assert result.ok, result.error
    assert result.text == prompt  # [[echo]]: the reply is the prompt, as claude read it
    [invocation] = [e for e in world.agent_entries() if "argv" in e]
    assert invocation["prompt"] == prompt
    assert not any(prompt in arg or "pwned" in arg for arg in invocation["argv"])
    assert list(tmp_path.rglob("pwned*")) == []
    assert not any(Path(name).name.startswith("pwned") for name in world.run_files())


async def test_claude_gets_no_gateway_secrets_and_neither_does_the_tmux_server(
    world: TmuxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "bot-token-value")
    monkeypatch.setenv("MPG_DASHBOARD_TOKEN", "dashboard-token-value")
    runner = world.runner()
    progress = ProgressLog()
    run = asyncio.create_task(runner.run(world.request("[[error:hang]]"), progress))
    await progress.first("init")

    server_env = tmux(world.socket, "show-environment", "-g").stdout
    assert "DISCORD_BOT_TOKEN" not in server_env and "MPG_DASHBOARD_TOKEN" not in server_env
    [invocation] = [e for e in world.agent_entries() if "argv" in e]
    assert "DISCORD_BOT_TOKEN" not in invocation["env"]
    assert "MPG_AGENT_LOG" in invocation["env"]  # the request's own environment does arrive

    assert await runner.cancel("1001")
    await run


async def test_timeout_kills_the_tmux_session_and_claudes_whole_process_group(world: TmuxWorld) -> None:
    runner = world.runner()
    progress = ProgressLog()
    request = world.request("[[error:orphan]] [[error:hang]]", timeout_s=90.0)
    run = asyncio.create_task(runner.run(request, progress))
    await progress.first("init")
    pids = world.claude_pids()
    assert len(pids) == 2  # claude and the `sleep 300` it left in its group
    assert world.sessions() == [runner.tmux_session("1001")]

    world.clock.advance(90.0)
    result = await run

    assert result.error_kind == "timeout"
    assert "1.5 min" in (result.error or "")
    assert world.sessions() == []
    await until(lambda: all(process_gone(pid) for pid in pids), what="claude's process group to end")
    await runner.acknowledge("1001")
    assert world.run_files() == []


async def test_cancel_ends_a_claude_that_ignores_sigterm(world: TmuxWorld) -> None:
    runner = world.runner(kill_grace_s=0.3)
    progress = ProgressLog()
    run = asyncio.create_task(runner.run(world.request("[[error:stubborn]]"), progress))
    await progress.first("init")
    [pid] = world.claude_pids()

    assert await runner.cancel("1001") is True
    result = await run

    assert result.error_kind == "cancelled"
    assert world.sessions() == []
    assert world.run_files() == []  # a cancelled run has nothing left to deliver
    await until(lambda: process_gone(pid), what="the stubborn claude to be killed")
    assert runner.running == []
    assert await runner.cancel("1001") is False


async def test_claude_missing_from_path_is_reported_without_starting_tmux(world: TmuxWorld) -> None:
    runner = world.runner()
    missing = str(world.project / "no-such-claude")
    result = await runner.run(world.request("hi", command=(missing,)), ProgressLog())

    assert result.error_kind == "missing_cli"
    assert missing in (result.error or "")
    assert world.sessions() == []
    assert world.run_files() == []


async def test_claudes_failure_is_parsed_like_the_direct_runners(world: TmuxWorld) -> None:
    runner = world.runner()
    result = await runner.run(world.request("[[error:429]]"), ProgressLog())

    assert result.error_kind == "rate_limit"
    assert result.exit_code == 1


async def test_a_second_run_for_a_busy_key_is_refused(world: TmuxWorld) -> None:
    runner = world.runner()
    progress = ProgressLog()
    run = asyncio.create_task(runner.run(world.request("[[error:hang]]"), progress))
    await progress.first("init")

    with pytest.raises(RuntimeError, match="already in progress"):
        await runner.run(world.request("again"), ProgressLog())

    await runner.cancel("1001")
    await run


async def test_a_new_run_replaces_an_unacknowledged_result_of_the_same_key(world: TmuxWorld) -> None:
    runner = world.runner()
    first = await runner.run(world.request("[[reply:first]]"), ProgressLog())
    second = await runner.run(world.request("[[reply:second]]"), ProgressLog())

    assert (first.text, second.text) == ("first", "second")
    assert (world.run_dir / runner.tmux_session("1001") / "prompt.txt").read_text() == "[[reply:second]]"


async def test_attach_command_names_the_runs_tmux_session(world: TmuxWorld) -> None:
    runner = world.runner()
    command = runner.attach_command("1001:engineer")

    assert command[1:] == ["-L", world.socket, "attach", "-t", runner.tmux_session("1001:engineer")]
    assert command[0].endswith("tmux")


async def test_the_session_is_gone_after_a_run_even_where_tmux_keeps_dead_panes(world: TmuxWorld) -> None:
    # Someone else's server on our socket, configured to keep panes whose program exited.
    assert tmux(world.socket, "new-session", "-d", "-s", "operator", "sleep", "60").returncode == 0
    assert tmux(world.socket, "set-option", "-g", "remain-on-exit", "on").returncode == 0
    runner = world.runner()

    result = await runner.run(world.request("[[reply:ok]]"), ProgressLog())

    assert result.text == "ok"
    assert world.sessions() == ["operator"]
