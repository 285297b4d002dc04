"""The claude command line and environment, the same for every runner.

The prompt is never part of the argument list: it goes to claude's standard input, so a
prompt that starts with ``-``, or that follows the variadic ``--allowed-tools``, can
never be read as a flag or a tool name.

The output format belongs to the runner, not to the config. MPG's default
``defaults.claudeArgs`` carries ``--output-format json``; every ``--output-format`` in
the configured arguments is replaced by ``stream-json --verbose`` (live progress) or, if
the caller asks for no streaming, by ``json``. ``text`` is never passed on: it carries no
session id, cost or error flag, so a run could not be resumed or judged. The parser
reads json and stream-json alike, so a project that pinned ``json`` loses nothing but
the progress lines.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

from mpg_tui.config import SECRET_ENV_NAMES
from mpg_tui.core.runner import RunRequest
from mpg_tui.runners.approval_tool import ApprovalToolLaunch

OUTPUT_FORMAT_FLAG = "--output-format"
_CLAUDE_OWN_PREFIXES = ("ANTHROPIC_", "CLAUDE_")
_SECRET_SUFFIXES = ("_TOKEN", "_SECRET")


def build_argv(
    request: RunRequest,
    *,
    stream: bool = True,
    live: bool = False,
    approval_tool: ApprovalToolLaunch | None = None,
) -> list[str]:
    """``[*command, "--print", <output format>, [--input-format stream-json], [--resume ID], [permission tool],
    *configured args]``.

    ``live`` asks for a process that reads one user message a line on stdin and stays up
    between turns (stream-json input; it implies stream-json output); such a process asks
    for permissions on its own pipes (``--permission-prompt-tool stdio``) when the run's
    approvals are relayed.

    The runner's own flags come before the configured ones so that a variadic flag at
    the end of the config (``--allowed-tools Read Edit``) cannot swallow them. With
    ``approval_tool`` and a run whose approvals are relayed, claude gets the MCP permission
    tool (:mod:`mpg_tui.runners.approval_tool`).
    """
    configured = strip_output_format(request.args)
    stream = stream or live
    own = ["--output-format", "stream-json"] if stream else ["--output-format", "json"]
    if stream and "--verbose" not in configured:
        own.append("--verbose")
    if live:
        own += ["--input-format", "stream-json"]
    if request.session_id:
        own += ["--resume", request.session_id]
    if live and request.permissions is not None:
        own += ["--permission-prompt-tool", "stdio"]
    elif approval_tool is not None and request.permissions is not None:
        own += approval_tool.argv(request.permissions)
    return [*request.command, "--print", *own, *configured]


def run_env(request: RunRequest, approval_tool: ApprovalToolLaunch | None = None) -> dict[str, str]:
    """The extra environment of a run: the request's, and how long claude waits for the permission tool."""
    env = dict(request.env or {})
    if approval_tool is not None and request.permissions is not None:
        env.update(approval_tool.env(request.permissions))
    return env


def strip_output_format(args: list[str]) -> list[str]:
    """``args`` without any ``--output-format X`` / ``--output-format=X``."""
    kept: list[str] = []
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
            if not arg.startswith("-"):
                continue
        if arg == OUTPUT_FORMAT_FLAG:
            skip_value = True
            continue
        if arg.startswith(OUTPUT_FORMAT_FLAG + "="):
            continue
        kept.append(arg)
    return kept


def child_env(extra: Mapping[str, str] | None = None, *, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment claude runs with: ours minus the gateway's secrets, plus ``extra``.

    Claude can run shell commands, so nothing it does not need may reach it: the bot
    token, the dashboard token, anything Discord, and any ``*_TOKEN`` / ``*_SECRET``.
    Claude's own credentials (``ANTHROPIC_*``, ``CLAUDE_*``) are kept. ``extra`` is
    applied last and is taken as deliberate.
    """
    source = os.environ if base is None else base
    env = {name: value for name, value in source.items() if not is_secret_name(name)}
    if extra:
        env.update(extra)
    return env


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether an environment variable must be kept from claude (remembered: a spawn asks for every variable)."""
    upper = name.upper()
    if upper in SECRET_ENV_NAMES:
        return True
    if upper.startswith(_CLAUDE_OWN_PREFIXES):
        return False
    return "DISCORD" in upper or upper.endswith(_SECRET_SUFFIXES)
