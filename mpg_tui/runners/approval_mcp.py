"""The MCP permission tool claude calls before a tool its lists do not settle (run by claude).

``python -I -m mpg_tui.runners.approval_mcp``, with the control socket, the run's token and
a deadline in its environment (see :mod:`mpg_tui.runners.approval_tool`). Claude calls
``approve`` with exactly ``{tool_name, input, tool_use_id}``; the tool asks the gateway
(``approval_ask`` on the control socket) and waits. When the gateway is away (restarting)
it retries, asking again with the same tool-use ID: the restarted gateway shows the request
again, and a gateway that already decided it answers the same. The answer goes back as one
text block holding the decision JSON, with no structured content (claude refuses that).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

import aiohttp
from mcp.server.mcpserver import MCPServer

from mpg_tui.control.client import ControlClient, Endpoint
from mpg_tui.control.protocol import ControlError, ProtocolError
from mpg_tui.core.permissions import NO_TOOL_USE_ID, PermissionDecision, PermissionRequest
from mpg_tui.runners.approval_tool import DEADLINE_ENV, SOCKET_ENV, TOKEN_ENV, TOOL_NAME

log = logging.getLogger(__name__)

RETRY_MIN_S = 0.2
RETRY_MAX_S = 2.0
MAX_STRING_CHARS = 4000
"""Long strings of a tool's input are cut before they travel: the gateway only shows them."""

server = MCPServer("mpg")


def _shrunk(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING_CHARS else value[:MAX_STRING_CHARS] + "…"
    if isinstance(value, dict):
        return {str(k): _shrunk(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shrunk(v) for v in value]
    return value


def _deny(message: str) -> str:
    return json.dumps({"behavior": "deny", "message": message})


async def ask_gateway(
    endpoint: Endpoint, token: str, tool_name: str, tool_input: dict[str, Any], tool_use_id: str, deadline: float
) -> PermissionDecision:
    """The gateway's decision; denied when it cannot be had before ``deadline`` (monotonic)."""
    delay = RETRY_MIN_S
    body = json.dumps(_shrunk(tool_input), ensure_ascii=False)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return PermissionDecision("deny", "Nobody could decide in time (the gateway was unreachable).")
        try:
            async with asyncio.timeout(remaining), ControlClient(endpoint) as client:
                result = await client.command(
                    "approval_ask", token=token, tool_name=tool_name, input=body, tool_use_id=tool_use_id
                )
            return PermissionDecision(
                result["outcome"],
                str(result.get("message") or ""),
                {str(k): str(v) for k, v in (result.get("answers") or {}).items()},
                str(result.get("decided_by") or ""),
            )
        except ControlError as exc:
            if exc.status in (401, 403, 400, 404):
                return PermissionDecision("deny", f"The gateway refused the request: {exc.message}")
            log.warning("approval request failed (%s); asking again", exc.message)
        except TimeoutError:
            continue
        except (aiohttp.ClientError, OSError, ProtocolError, KeyError, TypeError, ValueError) as exc:
            log.info("gateway unreachable (%s); asking again", type(exc).__name__)
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(RETRY_MAX_S, delay * 2)


# structured_output=False: with it the SDK would add structuredContent next to the text
# block, and claude rejects a permission result that is not a single text block.
@server.tool(name=TOOL_NAME, structured_output=False)
async def approve(tool_name: str, input: dict[str, Any], tool_use_id: str | None = None) -> str:
    """Ask the people behind the gateway whether a tool call may run."""
    socket, token = os.environ.get(SOCKET_ENV), os.environ.get(TOKEN_ENV)
    if not socket or not token:
        return _deny("The permission tool was started without its gateway.")
    deadline = time.monotonic() + float(os.environ.get(DEADLINE_ENV) or 600)
    request = PermissionRequest.from_tool_call(tool_name, input, tool_use_id)
    decision = await ask_gateway(
        Endpoint(url=f"unix:{socket}"), token, tool_name, dict(input), tool_use_id or NO_TOOL_USE_ID, deadline
    )
    return json.dumps(decision.cli_response(request), ensure_ascii=False)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="mpg approval tool: %(message)s")  # stderr only
    server.run("stdio")


if __name__ == "__main__":
    main()
