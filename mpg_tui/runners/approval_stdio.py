"""Claude's ``can_use_tool`` requests on a warm process's own pipes, answered by a person.

With ``--permission-prompt-tool stdio`` claude asks its host before a tool its lists do not
settle (see :mod:`mpg_tui.runners.stream_protocol`). :func:`permission_handler` turns such a
request into a :class:`~mpg_tui.core.permissions.PermissionRequest`, awaits the turn's
asker and answers with the decision as the CLI wants it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mpg_tui.core.permissions import AskPermission, PermissionRequest
from mpg_tui.runners.stream_protocol import RequestHandler

NOT_RELAYED = "Approvals are not relayed for this session."


def permission_handler(current_ask: Callable[[], AskPermission | None]) -> RequestHandler:
    """Answers one process's ``can_use_tool`` requests with ``current_ask()``.

    The process outlives its turns, and each turn may be asked for by another member: the
    asker is looked up when claude asks, not when the process starts. A
    ``control_cancel_request`` cancels the waiting ask (the stream protocol does that).
    """

    async def handle(request_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("subtype") != "can_use_tool":
            raise ValueError(f"unsupported request {body.get('subtype')!r}")
        raw_input = body.get("input")
        tool_use_id = body.get("tool_use_id")
        request = PermissionRequest.from_tool_call(
            str(body.get("tool_name", "")),
            raw_input if isinstance(raw_input, dict) else {},
            tool_use_id if isinstance(tool_use_id, str) else None,
            tuple(s for s in body.get("permission_suggestions") or () if isinstance(s, dict)),
        )
        ask = current_ask()
        if ask is None:
            return {"behavior": "deny", "message": NOT_RELAYED}
        decision = await ask(request)
        return decision.cli_response(request)

    return handle
