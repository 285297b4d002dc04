"""The live runner against the real claude CLI: warm processes, their end, interrupts, timeouts, and
timeouts that stop counting while claude waits for a person (``can_use_tool`` over its pipes)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mpg_tui.core.clock import FakeClock
from mpg_tui.core.permissions import PermissionDecision, PermissionRelay, PermissionRequest
from mpg_tui.core.runner import RunRequest
from mpg_tui.runners.live import LiveRunner
from tests.contract.conftest import ClaudeWorld, ProgressLog
from tests.contract.messages_api import Held, Text, ToolUse
from tests.unit.test_direct_runner import alive, ended

IDLE_S = 600.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def live(clock: FakeClock, tmp_path: Path) -> AsyncIterator[LiveRunner]:
    runner = LiveRunner(
        clock=clock, idle_s=IDLE_S, kill_grace_s=1.0, interrupt_grace_s=10.0, registry_dir=tmp_path / "runs"
    )
    yield runner
    await runner.close()


def warm(world: ClaudeWorld, prompt: str, **changes: object) -> RunRequest:
    return dataclasses.replace(world.request(prompt), warm=True, **changes)  # type: ignore[arg-type]


async def test_a_follow_up_goes_through_the_warm_process_and_the_model_sees_the_first_turn(
    world: ClaudeWorld, live: LiveRunner
) -> None:
    world.api.script(Text("Noted: heliotrope."), Text("It was heliotrope."))
    first = await live.run(warm(world, "Remember the word heliotrope."), ProgressLog())
    pid = live.warm[world.request("").key]
    second = await live.run(warm(world, "Which word?", session_id=first.session_id), ProgressLog())

    assert first.ok and second.ok and second.text == "It was heliotrope."
    assert second.session_id == first.session_id
    assert live.warm[world.request("").key] == pid, "one process, two turns"
    assert world.api.requests[-1].user_prompts() == ["Remember the word heliotrope.", "Which word?"]
    # The CLI's total is cumulative per process; each turn is charged for itself only.
    assert second.cost_usd == pytest.approx(first.cost_usd, rel=0.5)


async def test_an_idle_warm_process_closes_after_warm_idle(
    world: ClaudeWorld, live: LiveRunner, clock: FakeClock
) -> None:
    await live.run(warm(world, "Hello."), ProgressLog())
    (pid,) = live.warm.values()

    clock.advance(IDLE_S)

    assert await ended(pid)
    assert live.warm == {}


async def test_a_killed_warm_process_is_replaced_and_the_next_message_resumes_its_history(
    world: ClaudeWorld, live: LiveRunner
) -> None:
    world.api.script(Text("Noted: marigold."), Text("It was marigold."))
    first = await live.run(warm(world, "Remember the word marigold."), ProgressLog())
    (pid,) = live.warm.values()
    os.kill(pid, signal.SIGKILL)
    assert await ended(pid)

    second = await live.run(warm(world, "Which word?", session_id=first.session_id), ProgressLog())

    assert second.ok and second.text == "It was marigold."
    assert second.session_id == first.session_id
    assert list(live.warm.values()) != [pid]
    assert world.api.requests[-1].user_prompts() == ["Remember the word marigold.", "Which word?"]


async def test_an_interrupt_stops_a_turn_waiting_on_a_slow_model(world: ClaudeWorld, live: LiveRunner) -> None:
    slow = Held(Text("Too late."))
    world.api.script(Text("Hi."), slow, Text("Back again."))
    first = await live.run(warm(world, "Hello."), ProgressLog())
    (pid,) = live.warm.values()
    turn = asyncio.create_task(live.run(warm(world, "Think hard.", session_id=first.session_id), ProgressLog()))
    await slow.arrived.wait()

    assert await live.interrupt(world.request("").key)
    stopped = await turn
    slow.release.set()

    assert stopped.error_kind == "interrupted" and stopped.session_id == first.session_id
    assert alive(pid), "the process stays warm"
    after = await live.run(warm(world, "Still there?", session_id=first.session_id), ProgressLog())
    assert after.ok and after.text == "Back again."
    assert list(live.warm.values()) == [pid]


async def test_a_timeout_ends_a_turn_waiting_on_a_slow_model(
    world: ClaudeWorld, live: LiveRunner, clock: FakeClock
) -> None:
    slow = Held(Text("Too late."))
    world.api.script(slow)
    turn = asyncio.create_task(live.run(warm(world, "Think for ever.", timeout_s=60), ProgressLog()))
    await slow.arrived.wait()

    clock.advance(60)
    result = await turn
    slow.release.set()

    assert result.error_kind == "timeout" and "within 1 min" in (result.error or "")


async def test_a_permission_request_longer_than_the_timeout_does_not_end_the_turn(
    world: ClaudeWorld, live: LiveRunner, clock: FakeClock
) -> None:
    asked: asyncio.Queue[PermissionRequest] = asyncio.Queue()
    decision: asyncio.Future[PermissionDecision] = asyncio.get_running_loop().create_future()

    async def ask(request: PermissionRequest) -> PermissionDecision:
        with relay.waits.hold():
            await asked.put(request)
            return await decision

    relay = PermissionRelay(ask=ask, token="token", timeout_s=600.0)
    command = 'python3 -c "print(6*7)"'
    world.api.script(ToolUse("Bash", {"command": command}), Text("It printed 42."))
    turn = asyncio.create_task(live.run(warm(world, "Run it.", timeout_s=60, permissions=relay), ProgressLog()))
    assert (await asked.get()).summary == command

    clock.advance(600)  # ten timeouts, all spent waiting for the answer
    decision.set_result(PermissionDecision("allow", decided_by="ana"))
    result = await turn

    assert result.ok and result.text == "It printed 42."
    [tool_result] = world.api.requests[-1].tool_results()
    assert "42" in str(tool_result["content"])
