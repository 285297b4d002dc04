"""The stand-in's output: the lines the real CLI prints for each output format, and what a turn costs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
import uuid
from typing import Any

from mpg_tui.sandbox.agent.options import DEFAULT_TOOLS, VERSION, Options

_TOOL_INPUT_KEY = {
    "Read": "file_path",
    "Edit": "file_path",
    "Write": "file_path",
    "NotebookEdit": "notebook_path",
    "Grep": "pattern",
    "Glob": "pattern",
    "Bash": "command",
    "WebFetch": "url",
    "WebSearch": "query",
    "Task": "description",
}
_PATH_TOOLS = {"Read", "Edit", "Write", "NotebookEdit"}
_write_lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()


def share_stdout(lock: contextlib.AbstractContextManager[Any]) -> None:
    """Serialise every write to stdout through ``lock``: in a live session a second thread
    answers control requests while a turn prints, and lines must never interleave."""
    global _write_lock
    _write_lock = lock


def write_line(obj: dict[str, Any]) -> None:
    """One JSON line on stdout, whole."""
    data = (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    with _write_lock:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


class Emitter:
    """Writes what the real CLI would for the chosen output format."""

    def __init__(
        self, options: Options, session_id: str, cwd: str, *, spent_before: float | None = None, result_index: int = 0
    ) -> None:
        """``spent_before`` is what the live process spent on earlier turns (None: one turn
        per process); its results then carry the process's cumulative ``total_cost_usd`` and
        the turn's own ``model_usage_since_last_result``, as 2.1.330 prints them."""
        self.format = options.output_format
        self.options = options
        self.session_id = session_id
        self.cwd = cwd
        self.tool_uses = 0
        self.started = time.monotonic()
        self.cost: float | None = None
        """What the turn cost, when the turn decides it (``[[cost:USD]]``, a cap); else its tokens' price."""
        self.spent_before = spent_before
        self.result_index = result_index
        self.turn_cost = 0.0
        self.results = 0
        self.denials: list[dict[str, Any]] = []
        """``permission_denials`` of the turn's result."""

    def raw(self, text: str) -> None:
        with _write_lock:
            sys.stdout.buffer.write(text.encode("utf-8"))
            sys.stdout.buffer.flush()

    def line(self, obj: dict[str, Any]) -> None:
        write_line(obj)

    def init(self) -> None:
        if self.format != "stream-json":
            return
        tools = self.options.allowed_tools or DEFAULT_TOOLS
        self.line(
            {
                "type": "system",
                "subtype": "init",
                "cwd": self.cwd,
                "session_id": self.session_id,
                "tools": [t for part in tools for t in re.split(r"[,\s]+", part) if t],
                "mcp_servers": [],
                "model": self.options.model,
                "permissionMode": self.options.permission_mode,
                "slash_commands": [],
                "apiKeySource": "none",
                "claude_code_version": VERSION.split()[0],
                "output_style": "default",
                "uuid": str(uuid.uuid4()),
            }
        )

    def tool(self, name: str, target: str) -> None:
        key = _TOOL_INPUT_KEY.get(name, "target")
        value = os.path.join(self.cwd, target) if name in _PATH_TOOLS and target else target
        tool_id = self.tool_use(name, {key: value})
        self.tool_result(tool_id, f"{name} done")

    def tool_use(self, name: str, tool_input: dict[str, Any]) -> str:
        """The model asks for a tool; returns the call's ID (its result follows with :meth:`tool_result`)."""
        self.tool_uses += 1
        tool_id = "toolu_" + uuid.uuid4().hex[:24]
        if self.format == "stream-json":
            self._assistant([{"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}])
        return tool_id

    def tool_result(self, tool_id: str, content: str, *, is_error: bool = False) -> None:
        if self.format != "stream-json":
            return
        block: dict[str, Any] = {"tool_use_id": tool_id, "type": "tool_result", "content": content}
        if is_error:
            block["is_error"] = True
        self.line(
            {
                "type": "user",
                "message": {"role": "user", "content": [block]},
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": str(uuid.uuid4()),
            }
        )

    def denied(self, tool_id: str, name: str, tool_input: dict[str, Any], message: str) -> None:
        """A tool call that was not allowed: the model gets ``message``, the result lists it."""
        self.denials.append({"tool_name": name, "tool_use_id": tool_id, "tool_input": tool_input})
        self.tool_result(tool_id, message, is_error=True)

    def text(self, text: str) -> None:
        if self.format == "stream-json":
            self._assistant([{"type": "text", "text": text}])

    def api_error(self, message: str, status: int, tag: str, error_type: str) -> None:
        """The CLI's own assistant message for a failed API call (not claude's words)."""
        if self.format == "stream-json":
            self._assistant(
                [{"type": "text", "text": message}],
                model="<synthetic>",
                error=tag,
                is_api_error_message=True,
                api_error_status=status,
                api_error_type=error_type,
            )

    def _assistant(self, content: list[dict[str, Any]], *, model: str | None = None, **extra: Any) -> None:
        self.line(
            {
                "type": "assistant",
                "message": {
                    "id": "msg_" + uuid.uuid4().hex[:24],
                    "type": "message",
                    "role": "assistant",
                    "model": model or self.options.model,
                    "content": content,
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                },
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": str(uuid.uuid4()),
                **extra,
            }
        )

    def result(
        self,
        prompt: str,
        reply: str,
        *,
        is_error: bool = False,
        subtype: str = "success",
        extra: dict[str, Any] | None = None,
    ) -> None:
        result = {**self.result_object(prompt, reply, is_error=is_error, subtype=subtype), **(extra or {})}
        self.results += 1
        if self.format == "text":
            self.raw(("Error: Reached max turns" if subtype == "error_max_turns" else reply) + "\n")
        else:
            self.line(result)

    def usage(self, prompt: str, reply: str) -> dict[str, int]:
        return token_usage(prompt + self.options.append_system_prompt + self.options.system_prompt, reply)

    def result_object(self, prompt: str, reply: str, *, is_error: bool, subtype: str) -> dict[str, Any]:
        usage = self.usage(prompt, reply)
        cost = cost_of(usage) if self.cost is None else round(self.cost, 8)
        elapsed = int((time.monotonic() - self.started) * 1000)
        result: dict[str, Any] = {
            "type": "result",
            "subtype": subtype,
            "is_error": is_error,
            "duration_ms": elapsed,
            "duration_api_ms": max(0, elapsed - 5),
            "num_turns": 1 + self.tool_uses,
            "result": reply,
            "stop_reason": "end_turn",
            "session_id": self.session_id,
            "total_cost_usd": cost,
            "usage": {**usage, "server_tool_use": {"web_search_requests": 0}, "service_tier": "standard"},
            "modelUsage": {
                self.options.model: {
                    "inputTokens": usage["input_tokens"],
                    "outputTokens": usage["output_tokens"],
                    "cacheReadInputTokens": usage["cache_read_input_tokens"],
                    "cacheCreationInputTokens": usage["cache_creation_input_tokens"],
                    "webSearchRequests": 0,
                    "costUSD": cost,
                    "contextWindow": 200000,
                }
            },
            "permission_denials": list(self.denials),
            "uuid": str(uuid.uuid4()),
        }
        if subtype in ("error_max_turns", "error_max_budget_usd"):
            del result["result"]
        self.turn_cost = cost
        if self.spent_before is not None:
            result["total_cost_usd"] = round(self.spent_before + cost, 8)
            result["terminal_reason"] = "completed"
            result["result_index"] = self.result_index
            result["queued_turn_count"] = 0
            result["model_usage_since_last_result"] = result["modelUsage"]
        return result

    def budget_exhausted(self, prompt: str, reply: str, cap: float) -> None:
        """The result 2.1.330 prints when ``--max-budget-usd`` ends a turn."""
        shown = f"{cap:f}".rstrip("0").rstrip(".")
        extra = {"terminal_reason": "budget_exhausted", "errors": [f"Reached maximum budget (${shown})"]}
        if self.format == "text":
            self.raw(f"Error: Reached maximum budget (${shown})\n")
        else:
            self.line({**self.result_object(prompt, reply, is_error=True, subtype="error_max_budget_usd"), **extra})

    def interrupted(self, during_tool: bool) -> None:
        """How a turn the host interrupted ends (2.1.330): an interruption marker, then an
        ``error_during_execution`` result without ``result`` text; the process lives on."""
        marker = "[Request interrupted by user for tool use]" if during_tool else "[Request interrupted by user]"
        self.line(
            {
                "type": "user",
                "message": {"role": "user", "content": [{"type": "text", "text": marker}]},
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": str(uuid.uuid4()),
            }
        )
        elapsed = int((time.monotonic() - self.started) * 1000)
        self.results += 1
        self.turn_cost = 0.0
        self.line(
            {
                "type": "result",
                "subtype": "error_during_execution",
                "is_error": True,
                "terminal_reason": "aborted_tools" if during_tool else "aborted_streaming",
                "stop_reason": "tool_use" if during_tool else None,
                "num_turns": 1 + self.tool_uses,
                "errors": ["[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null"],
                "session_id": self.session_id,
                "total_cost_usd": round(self.spent_before or 0.0, 8),
                "permission_denials": [],
                "duration_ms": elapsed,
                "duration_api_ms": 0,
                "result_index": self.result_index,
                "queued_turn_count": 0,
                "model_usage_since_last_result": {},
                "uuid": str(uuid.uuid4()),
            }
        )


def token_usage(prompt: str, reply: str) -> dict[str, int]:
    """Deterministic token counts: about four characters a token."""
    return {
        "input_tokens": len(prompt) // 4 + 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1024,
        "output_tokens": len(reply) // 4 + 1,
    }


def cost_of(usage: dict[str, int]) -> float:
    """Dollars at Sonnet-like prices per million tokens."""
    dollars = (
        usage["input_tokens"] * 3.0
        + usage["output_tokens"] * 15.0
        + usage["cache_creation_input_tokens"] * 3.75
        + usage["cache_read_input_tokens"] * 0.3
    ) / 1_000_000
    return round(dollars, 8)


# -- one turn ------------------------------------------------------------------------------


class Meter:
    """What a turn's model calls cost, checked against ``--max-budget-usd`` after each call.

    With ``total`` (``[[cost:USD]]``) each of the ``calls`` model calls costs an equal share;
    without it the one check is made at the end, on the price of the tokens.
    """

    def __init__(self, total: float | None, calls: int, cap: float | None) -> None:
        self.total = total
        self.share = total / max(1, calls) if total is not None else 0.0
        self.cap = cap
        self.spent = 0.0

    def call(self) -> bool:
        """Charge one model call; True when the cap is now reached (the turn must end)."""
        if self.total is None:
            return False
        self.spent += self.share
        return self.cap is not None and self.spent >= self.cap - 1e-12

    def last_call(self, token_price: float) -> bool:
        """Charge the call that wrote the reply; True when the cap is reached."""
        if self.total is None:
            self.spent = token_price
            return self.cap is not None and self.spent >= self.cap
        return self.call()
