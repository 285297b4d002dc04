"""The stand-in's live mode speaks claude 2.1.330's stream-json input protocol; and our side of it."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from mpg_tui.runners.stream_protocol import ControlChannel, ControlError, user_message

if TYPE_CHECKING:
    from tests.unit.conftest import StandIn

LIVE_ARGS = ("--print", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose")


class Live:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    def send(self, obj: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(obj) + "\n").encode())

    def say(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(user_message(text))

    async def line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await self.process.stdout.readline()
        assert raw, "the stand-in closed its output"
        found: dict[str, Any] = json.loads(raw)
        return found

    async def turn(self) -> list[dict[str, Any]]:
        lines = [await self.line()]
        while lines[-1]["type"] != "result":
            lines.append(await self.line())
        return lines

    def close_stdin(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()


@pytest.fixture
async def live(stand_in: StandIn) -> AsyncIterator[Live]:
    process = await asyncio.create_subprocess_exec(
        str(stand_in.shim),
        *LIVE_ARGS,
        cwd=stand_in.project,
        env={**os.environ, **stand_in.env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    yield Live(process)
    if process.returncode is None:
        process.kill()
        await process.wait()


async def test_each_message_is_a_turn_with_init_and_result_and_cumulative_cost(live: Live) -> None:
    live.say("[[reply:one]]")
    first = await live.turn()
    live.say("[[recall]]")
    second = await live.turn()

    assert [line["type"] for line in first] == ["system", "assistant", "result"]
    assert second[0]["subtype"] == "init" and second[0]["session_id"] == first[0]["session_id"]
    assert second[-1]["result"] == "previous: [[reply:one]]"
    own = sum(usage["costUSD"] for usage in second[-1]["model_usage_since_last_result"].values())
    assert second[-1]["total_cost_usd"] == pytest.approx(first[-1]["total_cost_usd"] + own)
    assert [first[-1]["result_index"], second[-1]["result_index"]] == [0, 1]


async def test_an_interrupt_is_answered_and_ends_the_turn_but_not_the_process(live: Live) -> None:
    live.say("[[sleep:60]]")
    assert (await live.line())["subtype"] == "init"
    assert (await live.line())["type"] == "assistant"  # the first tick of the sleep
    live.send({"type": "control_request", "request_id": "r1", "request": {"subtype": "interrupt"}})

    rest = await live.turn()
    responses = [line for line in rest if line["type"] == "control_response"]
    assert responses[0]["response"] == {"subtype": "success", "request_id": "r1", "response": {"still_queued": []}}
    result = rest[-1]
    assert result["subtype"] == "error_during_execution" and result["is_error"] is True
    assert result["terminal_reason"] == "aborted_tools" and "result" not in result
    live.say("[[reply:after]]")
    assert (await live.turn())[-1]["result"] == "after"


async def test_an_interrupt_between_turns_is_only_answered(live: Live) -> None:
    live.send({"type": "control_request", "request_id": "idle", "request": {"subtype": "interrupt"}})
    assert (await live.line())["response"]["request_id"] == "idle"
    live.send({"type": "control_request", "request_id": "x", "request": {"subtype": "no_such_thing"}})
    assert (await live.line())["response"]["subtype"] == "error"


async def test_a_message_sent_mid_turn_waits_for_its_own_turn(live: Live) -> None:
    live.say("[[sleep:0.4]] [[reply:first]]")
    assert (await live.line())["subtype"] == "init"
    live.say("[[reply:second]]")
    assert (await live.turn())[-1]["result"] == "first"
    assert (await live.turn())[-1]["result"] == "second"


async def test_the_end_of_input_finishes_the_turn_then_exits(live: Live) -> None:
    live.say("[[sleep:0.3]] [[reply:done]]")
    live.close_stdin()
    assert (await live.turn())[-1]["result"] == "done"
    assert await live.process.wait() == 0


async def test_it_exits_with_1_when_its_last_result_was_an_error(live: Live) -> None:
    live.say("[[error:429]]")
    await live.turn()
    live.close_stdin()
    assert await live.process.wait() == 1


async def test_nothing_is_printed_before_the_first_message(live: Live) -> None:
    live.close_stdin()
    assert live.process.stdout is not None
    assert await live.process.stdout.read() == b""
    assert await live.process.wait() == 0


async def test_input_stream_json_needs_output_stream_json(stand_in: StandIn) -> None:
    process = await asyncio.create_subprocess_exec(
        str(stand_in.shim), "--print", "--input-format", "stream-json", stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    assert process.returncode == 1 and b"requires output-format=stream-json" in err


# -- the host's control channel ------------------------------------------------------------


async def test_a_request_gets_the_response_with_its_id() -> None:
    written: list[dict[str, Any]] = []
    channel = ControlChannel(lambda data: written.append(json.loads(data)))
    pending = asyncio.create_task(channel.request("interrupt"))
    await asyncio.sleep(0)
    request_id = written[0]["request_id"]
    assert written[0]["request"] == {"subtype": "interrupt"}

    assert channel.handle({"type": "control_response", "response": {"subtype": "success", "request_id": "other"}})
    body = {"still_queued": []}
    channel.handle(
        {"type": "control_response", "response": {"subtype": "success", "request_id": request_id, "response": body}}
    )
    assert await pending == body
    assert not channel.handle({"type": "result"})


async def test_an_error_response_or_a_gone_process_fails_the_request() -> None:
    written: list[dict[str, Any]] = []
    channel = ControlChannel(lambda data: written.append(json.loads(data)))
    refused = asyncio.create_task(channel.request("interrupt"))
    await asyncio.sleep(0)
    channel.handle(
        {
            "type": "control_response",
            "response": {"subtype": "error", "request_id": written[0]["request_id"], "error": "no"},
        }
    )
    with pytest.raises(ControlError, match="no"):
        await refused
    orphaned = asyncio.create_task(channel.request("interrupt"))
    await asyncio.sleep(0)
    channel.close("claude exited")
    with pytest.raises(ControlError, match="exited"):
        await orphaned
    with pytest.raises(ControlError):
        await channel.request("interrupt")


async def test_requests_from_claude_reach_the_handler_and_can_be_withdrawn() -> None:
    written: list[dict[str, Any]] = []
    asked = asyncio.Event()
    answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def handler(request_id: str, request: dict[str, Any]) -> dict[str, Any]:
        asked.set()
        return await answer

    channel = ControlChannel(lambda data: written.append(json.loads(data)), handler=handler)
    channel.handle({"type": "control_request", "request_id": "a", "request": {"subtype": "can_use_tool"}})
    await asked.wait()
    answer.set_result({"behavior": "allow"})
    while not written:
        await asyncio.sleep(0)
    assert written[0]["response"] == {"subtype": "success", "request_id": "a", "response": {"behavior": "allow"}}

    asked.clear()
    answer = asyncio.get_running_loop().create_future()
    channel.handle({"type": "control_request", "request_id": "b", "request": {"subtype": "can_use_tool"}})
    await asked.wait()
    channel.handle({"type": "control_cancel_request", "request_id": "b"})
    await asyncio.sleep(0)
    assert len(written) == 1, "a withdrawn request is not answered"


async def test_without_a_handler_claudes_requests_are_refused() -> None:
    written: list[dict[str, Any]] = []
    channel = ControlChannel(lambda data: written.append(json.loads(data)))
    channel.handle({"type": "control_request", "request_id": "a", "request": {"subtype": "can_use_tool"}})
    while not written:
        await asyncio.sleep(0)
    assert written[0]["response"]["subtype"] == "error"
