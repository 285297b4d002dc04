"""The stand-in's MCP permission prompt: ``--permission-prompt-tool mcp__<server>__<tool>``.

What Claude Code 2.1.330 does with such a tool (for a process whose pipes the host does not
hold: a one-turn run, a tmux run): it starts the stdio server named in ``--mcp-config``,
initializes it, and calls the tool with exactly ``{tool_name, input, tool_use_id}``. The
answer is one text block holding the decision JSON (``{"behavior": "allow", "updatedInput":
…}`` or ``{"behavior": "deny", "message": …}``). ``MCP_TOOL_TIMEOUT`` (milliseconds) bounds
the wait; past it the call fails, which denies the tool. Standard library only, like the
rest of the stand-in.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

PROTOCOL_VERSION = "2025-11-25"
DEFAULT_TIMEOUT_S = 600.0


class PromptToolError(Exception):
    """The permission tool could not be asked, or gave no usable answer (the call is denied)."""


def server_config(mcp_config: list[str], server: str) -> dict[str, Any]:
    """The ``mcpServers`` entry named ``server`` among ``--mcp-config`` values (JSON text or files)."""
    for value in mcp_config:
        text = value if value.lstrip().startswith("{") else Path(value).read_text(encoding="utf-8")
        servers = json.loads(text).get("mcpServers") or {}
        if isinstance(servers.get(server), dict):
            found: dict[str, Any] = servers[server]
            return found
    raise PromptToolError(f'MCP server "{server}" is not configured')


def ask(
    prompt_tool: str, mcp_config: list[str], tool: str, tool_input: Mapping[str, Any], tool_use_id: str
) -> dict[str, Any]:
    """Call the prompt tool and return its decision (``behavior`` and the rest)."""
    _, server, name = prompt_tool.split("__", 2)
    config = server_config(mcp_config, server)
    timeout_s = _timeout_s()
    process = subprocess.Popen(
        [str(config["command"]), *[str(a) for a in config.get("args") or []]],
        env={**os.environ, **{str(k): str(v) for k, v in (config.get("env") or {}).items()}},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None  # both are pipes
    watchdog = threading.Timer(timeout_s, process.kill)
    watchdog.start()
    try:
        _send(process.stdin, "initialize", 0, protocolVersion=PROTOCOL_VERSION, capabilities={}, clientInfo=_CLIENT)
        _reply(process.stdout, 0)
        _notify(process.stdin, "notifications/initialized")
        arguments = {"tool_name": tool, "input": dict(tool_input), "tool_use_id": tool_use_id}
        _send(process.stdin, "tools/call", 1, name=name, arguments=arguments)
        result = _reply(process.stdout, 1)
    except (OSError, PromptToolError) as exc:
        if not watchdog.is_alive():
            shown = f"{timeout_s:g}s"
            raise PromptToolError(f'MCP server "{server}" tool "{name}" timed out after {shown}') from None
        raise PromptToolError(str(exc)) from None
    finally:
        watchdog.cancel()
        _stop(process)
    return _decision(result)


_CLIENT = {"name": "claude-code", "version": "2.1.0 (stand-in)"}


def _timeout_s() -> float:
    try:
        return max(0.001, float(os.environ["MCP_TOOL_TIMEOUT"]) / 1000)
    except (KeyError, ValueError):
        return DEFAULT_TIMEOUT_S


def _send(stdin: IO[bytes], method: str, request_id: int, **params: Any) -> None:
    _write(stdin, {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})


def _notify(stdin: IO[bytes], method: str) -> None:
    _write(stdin, {"jsonrpc": "2.0", "method": method})


def _write(stdin: IO[bytes], message: dict[str, Any]) -> None:
    stdin.write((json.dumps(message) + "\n").encode("utf-8"))
    stdin.flush()


def _reply(stdout: IO[bytes], request_id: int) -> dict[str, Any]:
    """The result of our request ``request_id``; other lines (logs, notifications) are skipped."""
    for raw in stdout:
        try:
            message = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(message, dict) or message.get("id") != request_id:
            continue
        if "error" in message:
            raise PromptToolError(f"MCP error: {message['error']}")
        result = message.get("result")
        return result if isinstance(result, dict) else {}
    raise PromptToolError("the MCP server closed its output")


def _decision(result: dict[str, Any]) -> dict[str, Any]:
    content = result.get("content")
    texts = [b.get("text") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]
    if len(texts) != 1 or "structuredContent" in result or not isinstance(texts[0], str):
        raise PromptToolError(
            'Permission prompt tool returned an invalid result. Expected a single text block param with type="text" '
            "and a string text value."
        )
    try:
        decision = json.loads(texts[0])
    except ValueError:
        decision = None
    if not isinstance(decision, dict) or decision.get("behavior") not in ("allow", "deny"):
        raise PromptToolError(
            "The permission prompt tool returned an invalid permission result. Expected {behavior: 'allow', "
            "updatedInput?: object} or {behavior: 'deny', message: string}."
        )
    return decision


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
