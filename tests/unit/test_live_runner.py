"""The live runner: warm stand-in claude processes kept between turns, interrupts and timeouts."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mpg_tui.core.clock import FakeClock
from mpg_tui.core.permissions import PermissionDecision, PermissionRelay, PermissionRequest
from mpg_tui.core.runner import Progress, RunRequest
from mpg_tui.runners.live import REGISTRY_PREFIX, LiveRunner
from tests.unit.test_direct_runner import alive, collect, ended

if TYPE_CHECKING:
    from tests.unit.conftest import StandIn

IDLE_S = 600.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def runner(clock: FakeClock, tmp_path: Path) -> AsyncIterator[LiveRunner]:
    live = LiveRunner(
        clock=clock,
        idle_s=IDLE_S,
        max_processes=2,
        kill_grace_s=1.0,
        interrupt_grace_s=2.0,
        registry_dir=tmp_path / "runs",
    )
    yield live
    await live.close()


def warm(stand_in: StandIn, prompt: str, **overrides: Any) -> RunRequest:
    return stand_in.request(prompt, warm=True, **overrides)


def pids(stand_in: StandIn) -> list[int]:
    return [int(entry["pid"]) for entry in stand_in.invocations()]


async def test_a_follow_up_goes_to_the_same_process_which_remembers_the_first_turn(
    runner: LiveRunner, stand_in: StandIn
) -> None:
    first = await runner.run(warm(stand_in, "hello there"), lambda p: None)
    assert first.ok and first.session_id
    second = await runner.run(warm(stand_in, "[[recall]]", session_id=first.session_id), lambda p: None)

    assert second.ok and second.text == "previous: hello there"
    assert second.session_id == first.session_id
    assert len(set(pids(stand_in))) == 1, "both turns in one process"
    assert "--input-format" in stand_in.invocations()[0]["argv"]
    # Each turn is charged for itself, not for the process's running total.
    assert 0 < second.cost_usd < first.cost_usd + second.cost_usd
    assert list(runner.warm) == ["thread-1"]


async def test_an_idle_process_closes_after_the_idle_time(
    runner: LiveRunner, stand_in: StandIn, clock: FakeClock
) -> None:
    await runner.run(warm(stand_in, "hi"), lambda p: None)
    pid = runner.warm["thread-1"]

    clock.advance(IDLE_S - 1)
    assert alive(pid)
    clock.advance(1)

    assert await ended(pid)
    assert runner.warm == {}


async def test_the_least_recently_used_idle_process_closes_beyond_the_limit(
    runner: LiveRunner, stand_in: StandIn
) -> None:
    await runner.run(warm(stand_in, "a", key="t-a"), lambda p: None)
    await runner.run(warm(stand_in, "b", key="t-b"), lambda p: None)
    oldest = runner.warm["t-a"]
    await runner.run(warm(stand_in, "c", key="t-c"), lambda p: None)

    assert await ended(oldest)
    assert sorted(runner.warm) == ["t-b", "t-c"]


async def test_a_request_for_another_session_starts_another_process(runner: LiveRunner, stand_in: StandIn) -> None:
    first = await runner.run(warm(stand_in, "one"), lambda p: None)
    old = runner.warm["thread-1"]
    fresh = await runner.run(warm(stand_in, "two", session_id=None), lambda p: None)  # as after !restart

    assert fresh.ok and fresh.session_id != first.session_id
    assert runner.warm["thread-1"] != old
    assert await ended(old)


async def test_changed_settings_restart_the_process_resuming_the_session(runner: LiveRunner, stand_in: StandIn) -> None:
    first = await runner.run(warm(stand_in, "remember me"), lambda p: None)
    args = ["--permission-mode", "default"]
    second = await runner.run(warm(stand_in, "[[recall]]", session_id=first.session_id, args=args), lambda p: None)

    assert second.text == "previous: remember me"
    assert len(set(pids(stand_in))) == 2
    assert stand_in.invocations()[1]["argv"][stand_in.invocations()[1]["argv"].index("--resume") + 1] == (
        first.session_id
    )


async def test_a_process_killed_between_turns_is_replaced_and_resumes(runner: LiveRunner, stand_in: StandIn) -> None:
    first = await runner.run(warm(stand_in, "keep this"), lambda p: None)
    pid = runner.warm["thread-1"]
    os.kill(pid, signal.SIGKILL)
    assert await ended(pid)

    second = await runner.run(warm(stand_in, "[[recall]]", session_id=first.session_id), lambda p: None)

    assert second.ok and second.text == "previous: keep this"
    assert second.session_id == first.session_id
    assert runner.warm["thread-1"] != pid
    assert "--resume" in stand_in.invocations()[-1]["argv"]


async def test_a_process_that_dies_mid_turn_fails_the_turn_and_the_next_one_resumes(
    runner: LiveRunner, stand_in: StandIn
) -> None:
    first = await runner.run(warm(stand_in, "before the crash"), lambda p: None)
    crashed = await runner.run(warm(stand_in, "[[error:crash]]", session_id=first.session_id), lambda p: None)

    assert not crashed.ok and crashed.error_kind == "crash"
    assert "TypeError" in (crashed.error or "")
    assert runner.warm == {}
    after = await runner.run(warm(stand_in, "[[recall]]", session_id=first.session_id), lambda p: None)
    assert after.ok and after.session_id == first.session_id
    assert len(set(pids(stand_in))) == 2


async def test_an_interrupt_stops_the_turn_and_keeps_the_process(runner: LiveRunner, stand_in: StandIn) -> None:
    first = await runner.run(warm(stand_in, "hi"), lambda p: None)
    _, started, on_progress = collect()
    task = asyncio.create_task(runner.run(warm(stand_in, "[[sleep:60]]", session_id=first.session_id), on_progress))
    await started.wait()

    assert await runner.interrupt("thread-1")
    stopped = await task

    assert not stopped.ok and stopped.error_kind == "interrupted"
    assert stopped.session_id == first.session_id
    pid = runner.warm["thread-1"]
    after = await runner.run(warm(stand_in, "[[reply:still here]]", session_id=first.session_id), lambda p: None)
    assert after.text == "still here"
    assert runner.warm["thread-1"] == pid
    assert not await runner.interrupt("thread-1"), "nothing to stop between turns"


async def test_a_timeout_interrupts_the_turn_first(runner: LiveRunner, stand_in: StandIn, clock: FakeClock) -> None:
    _, started, on_progress = collect()
    task = asyncio.create_task(runner.run(warm(stand_in, "[[sleep:60]]", timeout_s=30), on_progress))
    await started.wait()
    clock.advance(30)
    result = await task

    assert not result.ok and result.error_kind == "timeout"
    assert "30 s" in (result.error or "")
    assert alive(runner.warm["thread-1"]), "an interrupted turn leaves its process warm"


async def test_a_timeout_ends_a_process_that_ignores_the_interrupt(
    stand_in: StandIn, clock: FakeClock, tmp_path: Path
) -> None:
    runner = LiveRunner(clock=clock, kill_grace_s=0.5, interrupt_grace_s=0.2, registry_dir=tmp_path / "runs")
    try:
        _, started, on_progress = collect()
        task = asyncio.create_task(runner.run(warm(stand_in, "[[error:stubborn]]", timeout_s=30), on_progress))
        await started.wait()
        pid = pids(stand_in)[0]
        clock.advance(30)
        result = await task
    finally:
        await runner.close()

    assert result.error_kind == "timeout"
    assert await ended(pid)
    assert runner.warm == {}


async def test_cancel_ends_the_process(runner: LiveRunner, stand_in: StandIn) -> None:
    _, started, on_progress = collect()
    task = asyncio.create_task(runner.run(warm(stand_in, "[[sleep:60]]"), on_progress))
    await started.wait()
    pid = pids(stand_in)[0]

    assert await runner.cancel("thread-1")
    result = await task

    assert result.error_kind == "cancelled"
    assert await ended(pid)


async def test_release_closes_the_warm_process_and_its_registry_file(
    runner: LiveRunner, stand_in: StandIn, tmp_path: Path
) -> None:
    await runner.run(warm(stand_in, "hi"), lambda p: None)
    pid = runner.warm["thread-1"]
    assert len(list((tmp_path / "runs").glob(f"{REGISTRY_PREFIX}*.json"))) == 1

    await runner.release("thread-1")

    assert await ended(pid)
    assert list((tmp_path / "runs").glob(f"{REGISTRY_PREFIX}*.json")) == []


async def test_a_cold_request_runs_one_process_per_turn(runner: LiveRunner, stand_in: StandIn) -> None:
    first = await runner.run(stand_in.request("one"), lambda p: None)
    await runner.run(dataclasses.replace(stand_in.request("two"), session_id=first.session_id), lambda p: None)

    assert len(set(pids(stand_in))) == 2
    assert runner.warm == {}
    assert "--input-format" not in stand_in.invocations()[0]["argv"]


async def test_close_ends_every_warm_process(runner: LiveRunner, stand_in: StandIn) -> None:
    await runner.run(warm(stand_in, "a", key="t-a"), lambda p: None)
    await runner.run(warm(stand_in, "b", key="t-b"), lambda p: None)
    started = list(runner.warm.values())

    await runner.close()

    for pid in started:
        assert await ended(pid)
    assert runner.warm == {}


async def test_sweep_ends_warm_processes_a_killed_gateway_left(
    stand_in: StandIn, clock: FakeClock, tmp_path: Path
) -> None:
    left = LiveRunner(clock=clock, registry_dir=tmp_path / "runs")
    await left.run(warm(stand_in, "hi"), lambda p: None)
    pid = left.warm["thread-1"]  # the gateway "dies" here: nothing closes it

    successor = LiveRunner(clock=clock, kill_grace_s=0.5, registry_dir=tmp_path / "runs")
    assert await successor.sweep_orphans() == ["thread-1"]
    assert await ended(pid)


async def test_what_a_turn_left_running_ends_when_the_warm_process_closes(
    runner: LiveRunner, stand_in: StandIn
) -> None:
    result = await runner.run(warm(stand_in, "[[error:orphan]] [[reply:left a child]]"), lambda p: None)
    assert result.ok
    (orphan,) = stand_in.orphan_pids()
    assert alive(orphan), "a warm process keeps its group between turns"

    await runner.release("thread-1")

    assert await ended(orphan)


# -- waiting for a person -------------------------------------------------------------------


class Approver:
    """A relay whose asks wait, holding the run's waits, until the test decides."""

    def __init__(self) -> None:
        self.asked: asyncio.Queue[PermissionRequest] = asyncio.Queue()
        self.decision: asyncio.Future[PermissionDecision] = asyncio.get_running_loop().create_future()
        self.relay = PermissionRelay(ask=self.ask, token="token", timeout_s=600.0)

    async def ask(self, request: PermissionRequest) -> PermissionDecision:
        with self.relay.waits.hold():
            await self.asked.put(request)
            return await self.decision


async def test_time_waiting_for_a_person_does_not_count_toward_the_turns_timeout(
    runner: LiveRunner, stand_in: StandIn, clock: FakeClock
) -> None:
    approver = Approver()
    request = warm(stand_in, "[[bash:make deploy]] [[reply:deployed]]", timeout_s=30, permissions=approver.relay)
    task = asyncio.create_task(runner.run(request, lambda p: None))
    asked = await approver.asked.get()
    assert asked.summary == "make deploy"
    assert clock.pending == 0, "no timeout is armed while the request waits"

    clock.advance(600)  # twenty timeouts' worth, all of it waiting for the answer
    approver.decision.set_result(PermissionDecision("allow", decided_by="ana"))
    result = await task

    assert result.ok and result.text == "deployed"
    assert "--permission-prompt-tool" in stand_in.invocations()[0]["argv"]


async def test_the_timeout_counts_again_once_the_person_has_answered(
    runner: LiveRunner, stand_in: StandIn, clock: FakeClock
) -> None:
    approver = Approver()
    request = warm(stand_in, "[[bash:make deploy]] [[sleep:60]]", timeout_s=30, permissions=approver.relay)
    progress: asyncio.Queue[Progress] = asyncio.Queue()
    task = asyncio.create_task(runner.run(request, progress.put_nowait))
    await approver.asked.get()
    clock.advance(600)
    approver.decision.set_result(PermissionDecision("allow", decided_by="ana"))
    while "sleep 60" not in (await progress.get()).text:
        pass  # the command ran; the turn works on

    clock.advance(30)
    result = await task

    assert not result.ok and result.error_kind == "timeout"


async def test_a_turn_with_a_dollar_cap_runs_in_a_process_of_its_own(runner: LiveRunner, stand_in: StandIn) -> None:
    # claude counts --max-budget-usd over a process's life: a warm process would refuse turns
    # once its earlier ones added up to the cap.
    first = await runner.run(warm(stand_in, "uncapped"), lambda p: None)
    assert list(runner.warm) == ["thread-1"]
    capped = warm(stand_in, "capped", session_id=first.session_id)
    capped = dataclasses.replace(capped, args=[*capped.args, "--max-budget-usd", "0.5"])

    second = await runner.run(capped, lambda p: None)
    third = await runner.run(dataclasses.replace(capped, prompt="[[recall]]"), lambda p: None)

    assert second.ok and third.ok and third.text == "previous: capped"
    assert runner.warm == {}, "the warm process closed; capped turns keep none"
    runs = stand_in.invocations()
    assert len({entry["pid"] for entry in runs}) == 3
    assert ["--input-format" in entry["argv"] for entry in runs] == [True, False, False]
