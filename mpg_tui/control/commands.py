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


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]
    """Names of its string arguments, all required."""
    run: Callable[[CoreAPI, Mapping[str, str]], Awaitable[Any]]
    help: str


async def _kill(core: CoreAPI, args: Mapping[str, str]) -> bool:
    return await core.kill(args["key"])


async def _restart(core: CoreAPI, args: Mapping[str, str]) -> bool:
    return await core.restart(args["key"])


async def _stop(core: CoreAPI, args: Mapping[str, str]) -> bool:
    return await core.stop(args["key"])


async def _post(core: CoreAPI, args: Mapping[str, str]) -> None:
    await core.post(args["channel_id"], args["author"], args["content"])


COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (
        Command("kill", ("key",), _kill, "end a session: its run, queue, stored ID and worktree"),
        Command("restart", ("key",), _restart, "clear a session's claude ID so the next message starts fresh"),
        Command("stop", ("key",), _stop, "stop a session's turn in progress; the session stays"),
        Command("post", ("channel_id", "author", "content"), _post, "post as a user (sandbox only)"),
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
        if len(value) > MAX_ARG_CHARS:
            raise ControlError("bad_request", f"{name!r} is longer than {MAX_ARG_CHARS} characters")
        args[name] = value
    return args
