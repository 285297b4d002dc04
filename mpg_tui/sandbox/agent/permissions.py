"""How the stand-in settles a tool call, the way Claude Code 2.1.330 does in ``--print`` mode.

* The rules first: ``--dangerously-skip-permissions`` and ``--permission-mode
  bypassPermissions`` allow everything; a ``--disallowedTools`` rule denies; an
  ``--allowedTools`` rule allows (``Bash`` allows every command, ``Bash(git:*)`` the
  commands that start with ``git``, ``Bash(make test)`` that exact command);
  ``--permission-mode dontAsk`` denies whatever they leave open.
* What the rules do not settle goes to the permission prompt tool. With
  ``--permission-prompt-tool stdio`` in a live session the host is asked with a
  ``can_use_tool`` control request and the turn waits for its ``control_response`` as long
  as it takes (the CLI has no timeout of its own); an interrupt withdraws the request
  (``control_cancel_request``) and ends the turn; the end of stdin fails it, as a denial.
* With ``--permission-prompt-tool mcp__<server>__<tool>`` (a one-turn or tmux run) the tool
  of that ``--mcp-config`` server is called and its answer awaited (:mod:`.mcp_prompt`).
* Without a prompt tool the call is denied at once with a ``permission_denied`` line.

:class:`ControlRequests` carries the stand-in's own requests to the host.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mpg_tui.sandbox.agent.options import Options
from mpg_tui.sandbox.agent.output import write_line

STREAM_CLOSED = "Tool permission request failed: AbortError: Tool permission stream closed before response received"


@dataclass(frozen=True)
class Verdict:
    """How a tool call was settled: run it with ``input``, or tell the model ``message``."""

    allowed: bool
    input: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""
    asked: bool = False
    """Whether a person (the host) was asked."""


class Withdrawn(Exception):
    """The host interrupted the turn while its permission request was pending."""


class ControlRequests:
    """Requests from the stand-in to the host, each awaiting the host's ``control_response``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[threading.Event, list[dict[str, Any] | None]]] = {}
        self._closed = False

    def ask(self, request: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any] | None:
        """Send ``request`` (with its ``subtype``) and return the host's response.

        None on timeout or once stdin has ended; :class:`Withdrawn` when the host interrupts first.
        """
        request_id = str(uuid.uuid4())
        answered = threading.Event()
        box: list[dict[str, Any] | None] = []
        with self._lock:
            if self._closed:
                return None
            self._waiting[request_id] = (answered, box)
        write_line({"type": "control_request", "request_id": request_id, "request": request})
        answered.wait(timeout_s)
        with self._lock:
            self._waiting.pop(request_id, None)
        if box and box[0] is None:
            raise Withdrawn
        return box[0] if box else None

    def resolve(self, response: dict[str, Any]) -> None:
        """Hand a ``control_response`` line's ``response`` to whoever asked; unknown ids are ignored."""
        request_id = response.get("request_id")
        with self._lock:
            waiting = self._waiting.pop(request_id, None) if isinstance(request_id, str) else None
        if waiting is not None:
            waiting[1].append(response)
            waiting[0].set()

    def withdraw_all(self) -> Callable[[], None]:
        """Print a ``control_cancel_request`` for every pending request; returns what wakes
        their askers (called once the interrupt's own response is out, as the CLI orders them)."""
        with self._lock:
            withdrawn = list(self._waiting.items())
            self._waiting.clear()
        for request_id, _ in withdrawn:
            write_line({"type": "control_cancel_request", "request_id": request_id})

        def wake() -> None:
            for _, (answered, box) in withdrawn:
                box.append(None)
                answered.set()

        return wake

    def close(self) -> None:
        """Stdin ended: every pending request fails, and later ones are not sent."""
        with self._lock:
            self._closed = True
            waiting = list(self._waiting.values())
            self._waiting.clear()
        for answered, _ in waiting:
            answered.set()


def rule_verdict(options: Options, tool: str, tool_input: Mapping[str, Any]) -> bool | None:
    """True: the rules allow the call; False: they deny it; None: a person must be asked."""
    if options.skip_permissions or options.permission_mode == "bypassPermissions":
        return True
    if any(_matches(rule, tool, tool_input) for rule in _rules(options.disallowed_tools)):
        return False
    if any(_matches(rule, tool, tool_input) for rule in _rules(options.allowed_tools)):
        return True
    if options.permission_mode == "dontAsk":
        return False  # what the rules do not allow is refused without asking
    return None


def settle(
    options: Options,
    requests: ControlRequests | None,
    tool: str,
    tool_input: Mapping[str, Any],
    tool_use_id: str,
) -> Verdict:
    """Decide a tool call: the rules, else the host over stdio, else a denial."""
    by_rules = rule_verdict(options, tool, tool_input)
    if by_rules is not None:
        message = "" if by_rules else f"Permission to use {tool} has been denied."
        return Verdict(by_rules, tool_input, message)
    prompt_tool = options.permission_prompt_tool or ""
    if prompt_tool.startswith("mcp__") and prompt_tool.count("__") >= 2:
        return _ask_tool(options, prompt_tool, tool, tool_input, tool_use_id)
    if prompt_tool != "stdio" or requests is None:
        message = f"Claude requested permissions to use {tool}, but you haven't granted it yet."
        write_line({"type": "system", "subtype": "permission_denied", "tool_name": tool, "message": message})
        return Verdict(False, tool_input, message)
    return _ask_host(requests, tool, tool_input, tool_use_id)


def _ask_host(requests: ControlRequests, tool: str, tool_input: Mapping[str, Any], tool_use_id: str) -> Verdict:
    """``can_use_tool`` over the live session's own pipes."""
    request = {
        "subtype": "can_use_tool",
        "tool_name": tool,
        "display_name": tool,
        "input": dict(tool_input),
        "permission_suggestions": [_suggestion(tool, tool_input)],
        "tool_use_id": tool_use_id,
    }
    if isinstance(tool_input.get("description"), str):
        request["description"] = tool_input["description"]
    response = requests.ask(request)
    if response is None:
        return Verdict(False, tool_input, STREAM_CLOSED, asked=True)
    if response.get("subtype") != "success":
        return Verdict(False, tool_input, f"Tool permission request failed: Error: {response.get('error')}", asked=True)
    body = response.get("response")
    decision = body if isinstance(body, dict) else {}
    return _verdict(decision, tool_input)


def _ask_tool(
    options: Options, prompt_tool: str, tool: str, tool_input: Mapping[str, Any], tool_use_id: str
) -> Verdict:
    """The MCP permission tool (a one-turn or tmux run); a failed call denies the tool."""
    from mpg_tui.sandbox.agent import mcp_prompt  # a subprocess: only imported when a tool must ask

    try:
        decision = mcp_prompt.ask(prompt_tool, options.mcp_config, tool, tool_input, tool_use_id)
    except mcp_prompt.PromptToolError as exc:
        return Verdict(False, tool_input, f"<tool_use_error>Error calling tool ({tool}): {exc}</tool_use_error>")
    return _verdict(decision, tool_input)


def _verdict(decision: dict[str, Any], tool_input: Mapping[str, Any]) -> Verdict:
    if decision.get("behavior") == "allow":
        updated = decision.get("updatedInput")
        return Verdict(True, updated if isinstance(updated, dict) else tool_input, asked=True)
    return Verdict(False, tool_input, str(decision.get("message") or "Denied."), asked=True)


def _suggestion(tool: str, tool_input: Mapping[str, Any]) -> dict[str, Any]:
    rule: dict[str, str] = {"toolName": tool}
    if isinstance(tool_input.get("command"), str):
        rule["ruleContent"] = tool_input["command"]
    return {"type": "addRules", "rules": [rule], "behavior": "allow", "destination": "localSettings"}


_RULE = re.compile(r"([A-Za-z_][\w-]*)(?:\(([^)]*)\))?")


def _rules(values: list[str]) -> list[tuple[str, str | None]]:
    """``Bash(git:*) Read,Edit`` → ``[("Bash", "git:*"), ("Read", None), ("Edit", None)]``."""
    return [(m.group(1), m.group(2)) for value in values for m in _RULE.finditer(value)]


def _matches(rule: tuple[str, str | None], tool: str, tool_input: Mapping[str, Any]) -> bool:
    name, content = rule
    if name != tool:
        return False
    if content is None:
        return True
    command = tool_input.get("command")
    if not isinstance(command, str):
        return False
    if content.endswith(":*"):
        prefix = content[:-2]
        return command == prefix or command.startswith(prefix + " ")
    return command == content
