"""How a run whose pipes the gateway does not hold gets the MCP permission tool.

Tmux-backed runs and one-process-per-turn runs cannot answer claude's ``can_use_tool``
control requests, so claude is given ``--permission-prompt-tool mcp__mpg__approve`` and an
``--mcp-config`` that launches :mod:`mpg_tui.runners.approval_mcp` (the official MCP SDK)
over stdio. That server asks the gateway over the control socket with the run's token and
waits for a person's decision, across a gateway restart too.

``MCP_TOOL_TIMEOUT`` (milliseconds) bounds how long claude waits for the tool; it is set
well above ``approvalTimeoutMs`` (a restarted gateway asks again from the start), and the
tool answers "deny" itself shortly before it, so claude always hears a decision.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from mpg_tui.core.permissions import NO_TOOL_USE_ID, PermissionRelay

__all__ = ["NO_TOOL_USE_ID", "ApprovalToolLaunch"]

SERVER_NAME = "mpg"
TOOL_NAME = "approve"
PROMPT_TOOL = f"mcp__{SERVER_NAME}__{TOOL_NAME}"
MCP_TIMEOUT_ENV = "MCP_TOOL_TIMEOUT"
SOCKET_ENV = "MPG_APPROVAL_SOCKET"
TOKEN_ENV = "MPG_APPROVAL_TOKEN"  # noqa: S105 (the variable's name, not a secret)
DEADLINE_ENV = "MPG_APPROVAL_DEADLINE_S"
RESTART_ALLOWANCE_S = 300.0
"""Extra time the tool waits beyond two approval timeouts (a gateway restart in between)."""
TOOL_MARGIN_S = 30.0
"""How long before claude gives up on the tool the tool answers "deny" itself."""


@dataclass(frozen=True)
class ApprovalToolLaunch:
    """Where the tool reaches the gateway, and the Python that runs it."""

    socket: Path
    python: str = sys.executable

    def tool_deadline_s(self, relay: PermissionRelay) -> float:
        return 2 * relay.timeout_s + RESTART_ALLOWANCE_S

    def argv(self, relay: PermissionRelay) -> list[str]:
        """The claude flags that give a run the permission tool."""
        server = {
            "type": "stdio",
            "command": self.python,
            # -I: neither the project directory nor PYTHON* variables can shadow our modules.
            "args": ["-I", "-m", "mpg_tui.runners.approval_mcp"],
            "env": {
                SOCKET_ENV: str(self.socket),
                TOKEN_ENV: relay.token,
                DEADLINE_ENV: str(self.tool_deadline_s(relay)),
            },
        }
        config = json.dumps({"mcpServers": {SERVER_NAME: server}}, separators=(",", ":"))
        return ["--mcp-config", config, "--permission-prompt-tool", PROMPT_TOOL]

    def env(self, relay: PermissionRelay) -> dict[str, str]:
        """Claude's own environment for the run: how long it waits for the tool."""
        return {MCP_TIMEOUT_ENV: str(int((self.tool_deadline_s(relay) + TOOL_MARGIN_S) * 1000))}
