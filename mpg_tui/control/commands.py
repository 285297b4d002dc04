"""The commands the control API runs on the core, and how their arguments are checked.

A command names its arguments and their types; anything else in a request is refused
before the core is touched. Later commands (stop, approvals, hold/release, continue)
are one more :class:`Command` in :data:`COMMANDS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mpg_tui.control.protocol import ControlError
from mpg_tui.core.api import CoreAPI

MAX_ARG_CHARS = 4000
"""The longest string argument (a chat message posted through the sandbox is the longest)."""
MAX_INPUT_CHARS = 60_000
"""The longest tool input a permission tool sends (its long strings are cut before)."""


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]
    """Names of its string arguments, all required."""
    run: Callable[[CoreAPI, Mapping[str, str]], Awaitable[Any]]
    help: str
    socket_only: bool = False
    """Refused on the dashboard's HTTP door (a run's permission tool, always local)."""
    max_chars: int = MAX_ARG_CHARS


async def _kill(core: CoreAPI, args: Mapping[str, str]) -> bool:
    return await core.kill(args["key"])


async def _restart(core: CoreAPI, args: Mapping[str, str]) -> bool:
    return await core.restart(args["key"])


async def _post(core: CoreAPI, args: Mapping[str, str]) -> None:
    await core.post(args["channel_id"], args["author"], args["content"])


async def _approval_decide(core: CoreAPI, args: Mapping[str, str]) -> str:
    return await core.decide(args["id"], args["choice"])


async def _approval_ask(core: CoreAPI, args: Mapping[str, str]) -> dict[str, Any]:
    try:
        return await core.ask_permission(args["token"], args["tool_name"], args["input"], args["tool_use_id"])
    except PermissionError as exc:
        raise ControlError("forbidden", str(exc), 403) from None


COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (
        Command("kill", ("key",), _kill, "end a session: its run, queue, stored ID and worktree"),
        Command("restart", ("key",), _restart, "clear a session's claude ID so the next message starts fresh"),
        Command("post", ("channel_id", "author", "content"), _post, "post as a user (sandbox only)"),
        Command(
            "approval_decide",
            ("id", "choice"),
            _approval_decide,
            "decide a pending request as the operator: allow, allow_session, deny or option:<n>",
        ),
        Command(
            "approval_ask",
            ("token", "tool_name", "input", "tool_use_id"),
            _approval_ask,
            "a run's permission tool asks and waits for the decision (control socket only)",
            socket_only=True,
            max_chars=MAX_INPUT_CHARS,
        ),
    )
}


def parse_args(command: Command, raw: Any) -> dict[str, str]:
    """The request's arguments, checked against what ``command`` takes."""
    if not isinstance(raw, Mapping):
        raise ControlError("bad_request", "'args' must be an object")
    unknown = sorted(set(raw) - set(command.args))
    if unknown:
        raise ControlError("bad_request", f"{command.name} takes no argument {', '.join(map(repr, unknown))}")
    args: dict[str, str] = {}
    for name in command.args:
        value = raw.get(name)
        if not isinstance(value, str) or not value:
            raise ControlError("bad_request", f"{command.name} needs {name!r}, a non-empty string")
        if len(value) > command.max_chars:
            raise ControlError("bad_request", f"{name!r} is longer than {command.max_chars} characters")
        args[name] = value
    return args
