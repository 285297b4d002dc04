"""The Messages API stand-in speaks the API's wire format (checked without the CLI)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.contract.messages_api import ApiError, MessagesAPI, Text, ToolUse

pytestmark = pytest.mark.contract


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def body(prompt: str, *, stream: bool = True) -> dict[str, Any]:
    return {
        "model": "claude-test",
        "max_tokens": 100,
        "stream": stream,
        "system": [{"type": "text", "text": "You are terse."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        "tools": [{"name": "Read", "input_schema": {}}],
    }


async def events(response: aiohttp.ClientResponse) -> list[tuple[str, dict[str, Any]]]:
    """The server-sent events of a streamed reply, as (event, data) pairs."""
    found: list[tuple[str, dict[str, Any]]] = []
    for frame in (await response.text()).split("\n\n"):
        if not frame.strip():
            continue
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        data = json.loads(lines["data"])
        assert data["type"] == lines["event"]
        found.append((lines["event"], data))
    return found


async def test_a_text_reply_streams_the_messages_event_sequence(http: aiohttp.ClientSession) -> None:
    async with MessagesAPI() as api:
        api.script(Text("Hello there.", input_tokens=5, output_tokens=3))
        async with http.post(f"{api.base_url}/v1/messages?beta=true", json=body("hi")) as response:
            assert response.status == 200
            assert response.content_type == "text/event-stream"
            stream = await events(response)

    assert [name for name, _ in stream] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = stream[0][1]["message"]
    assert start["role"] == "assistant" and start["content"] == [] and start["usage"]["input_tokens"] == 5
    assert stream[1][1]["content_block"] == {"type": "text", "text": ""}
    assert stream[2][1]["delta"] == {"type": "text_delta", "text": "Hello there."}
    assert stream[4][1]["delta"]["stop_reason"] == "end_turn"
    assert stream[4][1]["usage"] == {"output_tokens": 3}


async def test_a_tool_use_reply_streams_its_input_as_json_deltas(http: aiohttp.ClientSession) -> None:
    async with MessagesAPI() as api:
        api.script(ToolUse("Read", {"file_path": "a.txt"}, text="Let me look."))
        async with http.post(f"{api.base_url}/v1/messages", json=body("read")) as response:
            stream = await events(response)

    starts = [data["content_block"] for name, data in stream if name == "content_block_start"]
    deltas = [data["delta"] for name, data in stream if name == "content_block_delta"]
    assert starts[0] == {"type": "text", "text": ""}
    assert starts[1]["type"] == "tool_use" and starts[1]["name"] == "Read" and starts[1]["input"] == {}
    assert json.loads(deltas[1]["partial_json"]) == {"file_path": "a.txt"}
    assert deltas[1]["type"] == "input_json_delta"
    [stop] = [data for name, data in stream if name == "message_delta"]
    assert stop["delta"]["stop_reason"] == "tool_use"


async def test_requests_are_recorded_scripted_replies_come_first_then_the_fallback(
    http: aiohttp.ClientSession,
) -> None:
    async with MessagesAPI() as api:
        api.script(ApiError.for_status(429))
        api.fallback = Text("fallback")
        async with http.post(f"{api.base_url}/v1/messages", json=body("one")) as response:
            assert response.status == 429
            assert (await response.json())["error"]["type"] == "rate_limit_error"
        async with http.post(f"{api.base_url}/v1/messages", json=body("two", stream=False)) as response:
            message = await response.json()
        async with http.head(f"{api.base_url}/") as response:
            assert response.status == 200
        async with http.get(f"{api.base_url}/v1/models") as response:
            assert response.status == 404
        async with http.post(f"{api.base_url}/v1/messages", data=b"not json") as response:
            assert response.status == 400
            assert (await response.json())["error"]["type"] == "invalid_request_error"

    assert message["content"] == [{"type": "text", "text": "fallback"}] and message["stop_reason"] == "end_turn"
    assert [request.prompt for request in api.requests] == ["one", "two"]
    assert api.requests[0].system_text == "You are terse."
    assert api.requests[0].tool_names == ["Read"]
    assert api.unknown == ["GET /v1/models"]
    assert api.pending == 0
