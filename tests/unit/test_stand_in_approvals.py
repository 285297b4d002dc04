"""The demo's engineer asks before running the tests, the way claude 2.1.330 asks its host.

In a live session with ``--permission-prompt-tool stdio`` the request is a ``can_use_tool``
control request; the turn waits for the answer, then runs the command (allow) or tells the
model it was denied; an interrupt withdraws the request. Rules settle it without asking.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mpg_tui.sandbox.agent.options import parse_args
from mpg_tui.sandbox.agent.permissions import rule_verdict
from mpg_tui.sandbox.agent.personas import TEST_COMMAND
from tests.unit.test_stand_in_agent import STREAM, claude, lines
from tests.unit.test_stand_in_live import LIVE_ARGS, Live

if TYPE_CHECKING:
    from tests.unit.conftest import StandIn

ENGINEER = ("--append-system-prompt", "Your role: Software Engineer")
DEMO = {"MPG_AGENT_MODE": "demo", "MPG_AGENT_PACE": "0"}
Spawn = Callable[..., Any]


@pytest.fixture
async def spawn(stand_in: StandIn) -> AsyncIterator[Spawn]:
    started: list[asyncio.subprocess.Process] = []

    async def start(*args: str) -> Live:
        process = await asyncio.create_subprocess_exec(
            str(stand_in.shim),
            *LIVE_ARGS,
            *args,
            cwd=stand_in.project,
            env={**os.environ, **stand_in.env, **DEMO},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        started.append(process)
        return Live(process)

    yield start
    for process in started:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def until(live: Live, kind: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The lines before the first one of type ``kind``, and that line."""
    before: list[dict[str, Any]] = []
    while (line := await live.line())["type"] != kind:
        before.append(line)
    return before, line


def respond(live: Live, request_id: str, decision: dict[str, Any]) -> None:
    live.send(
        {
            "type": "control_response",
            "response": {"subtype": "success", "request_id": request_id, "response": decision},
        }
    )


def tool_results(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        block
        for line in lines
        if line["type"] == "user"
        for block in line["message"]["content"]
        if block.get("type") == "tool_result"
    ]


async def test_the_engineer_asks_to_run_the_tests_and_runs_them_once_allowed(spawn: Spawn) -> None:
    live = await spawn(*ENGINEER, "--permission-prompt-tool", "stdio", "--allowedTools", "Read", "Edit", "Bash(git:*)")
    live.say("run the tests")
    before, request = await until(live, "control_request")
    body = request["request"]
    assert body["subtype"] == "can_use_tool" and body["tool_name"] == "Bash"
    assert body["input"]["command"] == TEST_COMMAND
    asked_for = [b for line in before if line["type"] == "assistant" for b in line["message"]["content"]]
    assert asked_for[-1]["type"] == "tool_use" and asked_for[-1]["id"] == body["tool_use_id"]

    respond(live, request["request_id"], {"behavior": "allow", "updatedInput": body["input"]})
    rest = await live.turn()
    [*_, ran] = tool_results(rest)
    assert ran["tool_use_id"] == body["tool_use_id"] and "14 passed" in ran["content"] and not ran.get("is_error")
    result = rest[-1]
    assert result["subtype"] == "success" and result["permission_denials"] == []
    assert f"Ran the tests (`{TEST_COMMAND}`): 14 passed" in result["result"]
    assert result["result"].endswith("HANDOFF @pm: ready for review")


async def test_a_denied_test_run_is_not_run_and_the_reply_says_so(spawn: Spawn) -> None:
    live = await spawn(*ENGINEER, "--permission-prompt-tool", "stdio")
    live.say("run the tests")
    _, request = await until(live, "control_request")
    respond(live, request["request_id"], {"behavior": "deny", "message": "ana denied this: not now"})

    rest = await live.turn()
    [*_, denied] = tool_results(rest)
    assert denied["is_error"] is True and denied["content"] == "ana denied this: not now"
    result = rest[-1]
    assert [d["tool_name"] for d in result["permission_denials"]] == ["Bash"]
    assert "did not run the tests" in result["result"] and "ana denied this: not now" in result["result"]
    assert "HANDOFF" not in result["result"]


async def test_the_changed_command_the_host_allows_is_the_one_that_runs(spawn: Spawn) -> None:
    live = await spawn(*ENGINEER, "--permission-prompt-tool", "stdio")
    live.say("run the tests")
    _, request = await until(live, "control_request")
    respond(live, request["request_id"], {"behavior": "allow", "updatedInput": {"command": "make test"}})
    assert "Ran the tests (`make test`)" in (await live.turn())[-1]["result"]


async def test_an_interrupt_withdraws_the_pending_request_and_ends_the_turn(spawn: Spawn) -> None:
    live = await spawn(*ENGINEER, "--permission-prompt-tool", "stdio")
    live.say("run the tests")
    _, request = await until(live, "control_request")
    live.send({"type": "control_request", "request_id": "stop", "request": {"subtype": "interrupt"}})

    cancel = await live.line()
    assert cancel == {"type": "control_cancel_request", "request_id": request["request_id"]}
    assert (await live.line())["response"]["request_id"] == "stop"
    rest = await live.turn()
    [rejected] = tool_results(rest)
    assert rejected["tool_use_id"] == request["request"]["tool_use_id"] and rejected["is_error"] is True
    assert "doesn't want to proceed" in rejected["content"]
    result = rest[-1]
    assert result["subtype"] == "error_during_execution" and result["terminal_reason"] == "aborted_tools"
    live.say("[[reply:still here]]")
    assert (await live.turn())[-1]["result"] == "still here"


async def test_the_end_of_input_fails_a_pending_request_and_the_turn_goes_on(spawn: Spawn) -> None:
    live = await spawn(*ENGINEER, "--permission-prompt-tool", "stdio")
    live.say("run the tests")
    await until(live, "control_request")
    live.close_stdin()
    result = (await live.turn())[-1]
    assert result["subtype"] == "success" and "Tool permission stream closed" in result["result"]
    assert await live.process.wait() == 0


async def test_without_a_prompt_tool_the_call_is_denied_without_asking(spawn: Spawn) -> None:
    live = await spawn(*ENGINEER)
    live.say("run the tests")
    lines = await live.turn()
    assert not [line for line in lines if line["type"] == "control_request"]
    assert any(line.get("subtype") == "permission_denied" for line in lines)
    assert "did not run the tests" in lines[-1]["result"]


async def test_a_task_without_tests_asks_nothing(spawn: Spawn) -> None:
    live = await spawn(*ENGINEER, "--permission-prompt-tool", "stdio")
    live.say("add a search box")
    lines = await live.turn()
    assert not [line for line in lines if line["type"] == "control_request"]
    assert lines[-1]["result"].startswith("Done: add a search box.")


@pytest.mark.parametrize(
    ("args", "command", "verdict"),
    [
        (["--allowedTools", "Read", "Bash(git:*)"], "git status", True),
        (["--allowedTools", "Read", "Bash(git:*)"], "gitk", None),
        (["--allowedTools", "Read,Bash"], "rm -rf build", True),
        (["--allowedTools", "Bash(make test)"], "make test", True),
        (["--allowedTools", "Bash(make test)"], "make test-all", None),
        (["--allowedTools", "Bash", "--disallowedTools", "Bash(rm:*)"], "rm -rf build", False),
        (["--permission-mode", "bypassPermissions"], "rm -rf build", True),
        (["--permission-mode", "dontAsk", "--allowedTools", "Bash(git:*)"], "rm -rf build", False),
        (["--permission-mode", "dontAsk", "--allowedTools", "Bash(git:*)"], "git log", True),
        ([], TEST_COMMAND, None),
    ],
)
def test_rules_settle_a_bash_call_before_anyone_is_asked(args: list[str], command: str, verdict: bool | None) -> None:
    options = parse_args(["--print", *args, "prompt"])
    assert rule_verdict(options, "Bash", {"command": command}) is verdict


async def test_the_bash_directive_asks_like_any_call_the_rules_leave_open(spawn: Spawn) -> None:
    live = await spawn("--permission-prompt-tool", "stdio", "--allowedTools", "Bash(git:*)")
    live.say("[[bash:git status]] [[bash:make deploy]] [[reply:shipped]]")
    before, request = await until(live, "control_request")
    assert request["request"]["input"]["command"] == "make deploy"
    assert [r["content"] for r in tool_results(before)] == ["(Bash completed with no output)"]  # git: no asking
    respond(live, request["request_id"], {"behavior": "allow", "updatedInput": request["request"]["input"]})
    assert (await live.turn())[-1]["result"] == "shipped"


FAKE_TOOL = """
import json, sys
for raw in sys.stdin:
    message = json.loads(raw)
    if message.get("method") == "initialize":
        print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {"protocolVersion": "2025-11-25"}}))
    elif message.get("method") == "tools/call":
        with open(sys.argv[2], "w") as seen:
            json.dump(message["params"], seen)
        if sys.argv[1] != "silent":
            content = [{"type": "text", "text": sys.argv[1]}]
            print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {"content": content}}))
    sys.stdout.flush()
"""


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"behavior": "allow", "updatedInput": {"command": "make test"}}', "Ran the tests (`make test`)"),
        ('{"behavior": "deny", "message": "ana denied this"}', "did not run the tests (`python3 -m pytest -q`): ana"),
        ("sure, go ahead", "invalid permission result"),
        ("silent", "timed out after 0.3s"),
    ],
)
def test_one_turn_per_process_asks_the_mcp_permission_tool(
    stand_in: StandIn, tmp_path: Path, answer: str, expected: str
) -> None:
    script, seen = tmp_path / "tool.py", tmp_path / "seen.json"
    script.write_text(FAKE_TOOL)
    server = {"type": "stdio", "command": sys.executable, "args": [str(script), answer, str(seen)]}
    config = json.dumps({"mcpServers": {"srv": server}})
    args = ("--mcp-config", config, "--permission-prompt-tool", "mcp__srv__approve", *ENGINEER)
    env = {**DEMO, "MCP_TOOL_TIMEOUT": "300"}
    done = claude(stand_in, *STREAM, *args, prompt="run the tests", env=env)

    assert expected in lines(done.stdout)[-1]["result"]
    params = json.loads(seen.read_text())
    assert params["name"] == "approve"
    assert params["arguments"]["tool_name"] == "Bash"
    assert params["arguments"]["input"]["command"] == TEST_COMMAND
    assert set(params["arguments"]) == {"tool_name", "input", "tool_use_id"}
