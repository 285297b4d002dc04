"""The commands the control API runs on the core, and how their arguments are checked.

A command names its arguments and their types; anything else in a request is refused
before the core is touched. Later commands (stop, approvals, continue) are one more
:class:`Command` in :data:`COMMANDS`. A command refuses a request with a
:class:`ControlError`, which reaches the client as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mpg_tui.control import protocol
from mpg_tui.control.protocol import ControlError
from mpg_tui.core.api import CoreAPI
from mpg_tui.core.commands import parse_amount
from mpg_tui.core.holds import IF_RUNNING, HoldError

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
    optional: tuple[str, ...] = ()
    """Names of string arguments it may be given."""
    socket_only: bool = False
    """Refused on the dashboard's HTTP door (a run's permission tool, always local)."""
    max_chars: int = MAX_ARG_CHARS


async def _kill(core: CoreAPI, args: Mapping[str, str]) -> bool:
    return await core.kill(args["key"])


async def _restart(core: CoreAPI, args: Mapping[str, str]) -> bool:
    return await core.restart(args["key"])


async def _stop(core: CoreAPI, args: Mapping[str, str]) -> bool:
    return await core.stop(args["key"])


async def _post(core: CoreAPI, args: Mapping[str, str]) -> None:
    await core.post(args["channel_id"], args["author"], args["content"])


async def _continue(core: CoreAPI, args: Mapping[str, str]) -> str:
    try:
        amount = parse_amount(args.get("amount_usd", ""))
    except ValueError:
        raise ControlError("bad_request", "'amount_usd' must be a number of dollars above 0") from None
    return await core.continue_thread(args["thread_id"], amount)


HOLD_ERROR_STATUS = {"not_found": 404, "ambiguous": 409, "no_session": 409, "busy": 409, "held": 409}


async def _hold(core: CoreAPI, args: Mapping[str, str]) -> Any:
    if_running = args.get("if_running", "refuse")
    if if_running not in IF_RUNNING:
        raise ControlError("bad_request", f"'if_running' is one of {', '.join(IF_RUNNING)}")
    try:
        lease_s = float(args["lease_s"]) if "lease_s" in args else None
    except ValueError:
        raise ControlError("bad_request", "'lease_s' must be a number of seconds") from None
    options: dict[str, Any] = {"if_running": if_running}
    if lease_s is not None:
        options["lease_s"] = lease_s
    try:
        grant = await core.hold(args["session"], args.get("holder", "control API"), **options)
    except HoldError as exc:
        raise ControlError(exc.code, exc.message, HOLD_ERROR_STATUS[exc.code]) from None
    return protocol.grant_json(grant)


async def _renew_hold(core: CoreAPI, args: Mapping[str, str]) -> bool:
    return await core.renew_hold(args["hold_id"])


async def _release_hold(core: CoreAPI, args: Mapping[str, str]) -> Any:
    back = await core.release_hold(args["hold_id"])
    return protocol.hand_back_json(back) if back is not None else None


async def _conversation(core: CoreAPI, args: Mapping[str, str]) -> Any:
    return [entry.to_dict() for entry in await core.conversation(args["thread_id"])]


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
        Command("stop", ("key",), _stop, "stop a session's turn in progress; the session stays"),
        Command("post", ("channel_id", "author", "content"), _post, "post as a user (sandbox only)"),
        Command(
            "continue",
            ("thread_id",),
            _continue,
            "raise the budget limit a paused thread stopped at, once, and run what it kept",
            optional=("amount_usd",),
        ),
        Command(
            "hold",
            ("session",),
            _hold,
            "lend a session to a terminal: its runs wait until released (or the lease runs out)",
            optional=("holder", "if_running", "lease_s"),
        ),
        Command("renew_hold", ("hold_id",), _renew_hold, "keep a hold for another lease"),
        Command("release_hold", ("hold_id",), _release_hold, "hand a held session back"),
        Command("conversation", ("thread_id",), _conversation, "a thread's recent conversation"),
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
    unknown = sorted(set(raw) - set(command.args) - set(command.optional))
    if unknown:
        raise ControlError("bad_request", f"{command.name} takes no argument {', '.join(map(repr, unknown))}")
    args: dict[str, str] = {}
    for name in (*command.args, *(n for n in command.optional if n in raw)):
        value = raw.get(name)
        if name in command.optional and value is None:
            continue
        if not isinstance(value, str) or not value:
            raise ControlError("bad_request", f"{command.name} needs {name!r}, a non-empty string")
        if len(value) > command.max_chars:
            raise ControlError("bad_request", f"{name!r} is longer than {command.max_chars} characters")
        args[name] = value
    return args
