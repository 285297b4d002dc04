"""claude misbehaving: every way a run can go wrong is told to its thread, and nothing else suffers.

Each test runs a whole gateway in this process against its own sandbox, with the
stand-in ``claude`` failing on purpose (``[[error:...]]``). After the fault, the same
thread still works (the session was not left broken) and another project's channel is
still answered (the gateway kept serving).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.gateway_process import process_alive
from tests.faults.conftest import ERROR_PREFIX, Channels, StartWorld, World, orphan_pids, process_gone

CHANNELS: Channels = {"claude": {}, "others": {}}


async def fault_then_recovery(world: World, directive: str) -> tuple[str, list[str]]:
    """Ask with ``directive``; the thread's error text and everything the bot said in the thread.

    Also checks the thread works again afterwards and another project is still served.
    """
    posted, thread_id = await world.ask("claude", f"{directive} please work")
    error = await world.error_in(thread_id, posted.seq)

    again = await world.chat.post(thread_id, "[[reply:fine again]] and now?")
    await world.chat.sent(thread_id, "fine again", again.seq)
    await world.still_serves("others", "others still served")
    return error.text.removeprefix(ERROR_PREFIX), world.bot_messages(thread_id)


async def test_claude_exiting_non_zero_tells_the_thread_with_its_stderr(start_world: StartWorld) -> None:
    world = await start_world(CHANNELS)
    error, _ = await fault_then_recovery(world, "[[error:crash]]")

    assert error.startswith("Claude exited with code 2 without a result.\n")
    assert "TypeError: Cannot read properties of undefined" in error


async def test_claude_printing_nothing_tells_the_thread(start_world: StartWorld) -> None:
    world = await start_world(CHANNELS)
    error, _ = await fault_then_recovery(world, "[[error:empty]]")

    assert error == "Claude finished without saying anything."


async def test_claude_printing_garbage_tells_the_thread_what_it_printed(start_world: StartWorld) -> None:
    world = await start_world(CHANNELS)
    error, _ = await fault_then_recovery(world, "[[error:garbage]]")

    assert error.lower().startswith("claude printed no result.\n")
    assert "not json at all" in error


async def test_claude_printing_a_partial_line_tells_the_thread(start_world: StartWorld) -> None:
    world = await start_world(CHANNELS)
    error, said = await fault_then_recovery(world, "[[error:partial]]")

    assert error.lower().startswith("claude printed no result.\n{")  # quoting the half line it got
    assert "cut off here" not in said  # the half line was never taken for a reply


async def test_claude_printing_10_mb_still_delivers_its_reply_once(start_world: StartWorld) -> None:
    world = await start_world(CHANNELS)
    posted, thread_id = await world.ask("claude", "[[error:flood:10]] [[reply:after the flood]] talk a lot")
    await world.chat.sent(thread_id, "after the flood", posted.seq)

    sent = world.bot_messages(thread_id, posted.seq)
    assert sent.count("after the flood") == 1
    assert not any(text.startswith("flood ") for text in sent)  # the junk never reaches the thread
    await world.still_serves("others", "others still served")


async def test_claude_hanging_past_the_timeout_is_killed_with_its_whole_process_group(
    start_world: StartWorld,
) -> None:
    world = await start_world(CHANNELS, defaults={"runTimeoutMs": 1500})
    # Ignores SIGTERM and leaves a child in its process group: only SIGKILL of the group ends both.
    posted, thread_id = await world.ask("claude", "[[error:orphan]] [[error:stubborn]] never finish")
    error = await world.error_in(thread_id, posted.seq)

    assert error.text == f"{ERROR_PREFIX}Claude did not finish within 1.5 s; the run was stopped."
    (run,) = world.profile.agent_log.asked("never finish")
    (orphan,) = orphan_pids(world.profile)
    assert not process_alive(run.pid)  # reaped by the runner before it reported
    await process_gone(orphan)
    await world.still_serves("others", "others still served")


async def test_children_claude_leaves_behind_are_ended_with_its_run(start_world: StartWorld) -> None:
    # One process per turn: a warm claude's group (and what it left running) lives until the
    # process closes; tests/unit/test_live_runner.py covers that end.
    world = await start_world(CHANNELS, defaults={"warm": False})
    posted, thread_id = await world.ask("claude", "[[error:orphan]] [[reply:done, child left running]] go")
    await world.chat.sent(thread_id, "done, child left running", posted.seq)

    (orphan,) = orphan_pids(world.profile)
    await process_gone(orphan)


async def test_claude_missing_from_path_tells_the_thread_how_to_install_it(
    start_world: StartWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    world = await start_world(CHANNELS, settings={"claude_command": ("claude",)})
    posted, thread_id = await world.ask("claude", "[[reply:unreachable]] is claude there?")
    error = await world.error_in(thread_id, posted.seq)

    assert error.text.startswith(f"{ERROR_PREFIX}`claude` was not found on PATH")
    assert "npm install -g @anthropic-ai/claude-code" in error.text
    session = world.runtime.gateway.session(thread_id)
    assert session is not None and session.session_id is None  # no claude session was made up
    others = world.channel("others")
    help_asked = await world.chat.post(others, "!help")
    await world.chat.sent_starting(others, "**Gateway commands**", help_asked.seq)  # the gateway itself is fine
