"""The stand-in's command line: the real CLI's flags, parsed and checked the way it does."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

VERSION = "2.1.0 (Claude Code stand-in)"
MODEL = "claude-sonnet-4-5-20250929"
DEFAULT_TOOLS = ["Task", "Bash", "Glob", "Grep", "Read", "Edit", "Write", "WebFetch", "TodoWrite", "WebSearch"]
OUTPUT_FORMATS = ("text", "json", "stream-json")
INPUT_FORMATS = ("text", "stream-json")
PERMISSION_MODES = ("acceptEdits", "auto", "bypassPermissions", "default", "dontAsk", "plan")
ERROR_KINDS = (
    "auth",
    "401",
    "429",
    "500",
    "529",
    "usage",
    "max_turns",
    "crash",
    "garbage",
    "empty",
    "partial",
    "hang",
    "stubborn",
    "flood",
    "orphan",
)

# flag -> (option name, arity: 0 = switch, 1 = one value, -1 = one or more values)
_FLAGS: dict[str, tuple[str, int]] = {
    "-p": ("print", 0),
    "--print": ("print", 0),
    "--output-format": ("output_format", 1),
    "--input-format": ("input_format", 1),
    "--verbose": ("verbose", 0),
    "-r": ("resume", 1),
    "--resume": ("resume", 1),
    "--session-id": ("session_id", 1),
    "--append-system-prompt": ("append_system_prompt", 1),
    "--system-prompt": ("system_prompt", 1),
    "--allowed-tools": ("allowed_tools", -1),
    "--allowedTools": ("allowed_tools", -1),
    "--disallowed-tools": ("disallowed_tools", -1),
    "--disallowedTools": ("disallowed_tools", -1),
    "--add-dir": ("add_dir", -1),
    "--permission-mode": ("permission_mode", 1),
    "--model": ("model", 1),
    "--max-turns": ("max_turns", 1),
    "--max-budget-usd": ("max_budget_usd", 1),
    "--dangerously-skip-permissions": ("skip_permissions", 0),
    "--mcp-config": ("mcp_config", -1),
    "--strict-mcp-config": ("strict_mcp_config", 0),
    "--permission-prompt-tool": ("permission_prompt_tool", 1),
    "-v": ("version", 0),
    "--version": ("version", 0),
    "-h": ("help", 0),
    "--help": ("help", 0),
}


class UsageError(Exception):
    """A command line the real CLI would refuse; the message is what it prints."""


@dataclass
class Options:
    print: bool = False
    output_format: str = "text"
    input_format: str = "text"
    verbose: bool = False
    resume: str | None = None
    session_id: str | None = None
    append_system_prompt: str = ""
    system_prompt: str = ""
    allowed_tools: list[str] = field(default_factory=list)
    disallowed_tools: list[str] = field(default_factory=list)
    add_dir: list[str] = field(default_factory=list)
    permission_mode: str = "default"
    model: str = MODEL
    max_turns: int | None = None
    max_budget_usd: float | None = None
    skip_permissions: bool = False
    mcp_config: list[str] = field(default_factory=list)
    """MCP server configs (JSON text or files), as the real CLI takes them."""
    strict_mcp_config: bool = False
    permission_prompt_tool: str | None = None
    """``mcp__<server>__<tool>``: the tool asked before a tool the rules do not settle."""
    version: bool = False
    help: bool = False
    prompt_args: list[str] = field(default_factory=list)


def parse_args(argv: list[str]) -> Options:
    options = Options()
    values: dict[str, Any] = {}
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg == "--":
            options.prompt_args += argv[index:]
            break
        if not arg.startswith("-") or arg == "-":
            options.prompt_args.append(arg)
            continue
        name, has_inline, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name not in _FLAGS:
            raise UsageError(f"error: unknown option '{name}'")
        dest, arity = _FLAGS[name]
        if arity == 0:
            if has_inline:
                raise UsageError(f"error: option '{name}' does not take an argument")
            values[dest] = True
        elif arity == 1:
            if has_inline:
                values[dest] = inline
            elif index < len(argv):
                values[dest] = argv[index]
                index += 1
            else:
                raise UsageError(f"error: option '{name} <value>' argument missing")
        else:
            taken = [inline] if has_inline else []
            while index < len(argv) and not argv[index].startswith("-"):
                taken.append(argv[index])
                index += 1
            if not taken:
                raise UsageError(f"error: option '{name} <values...>' argument missing")
            values[dest] = [*values.get(dest, []), *taken]
    for dest, value in values.items():
        setattr(options, dest, value)
    return _validated(options)


def _validated(options: Options) -> Options:
    if options.version or options.help:
        return options
    if options.output_format not in OUTPUT_FORMATS:
        raise UsageError(
            f"error: option '--output-format <format>' argument '{options.output_format}' is invalid. "
            f"Allowed choices are {', '.join(OUTPUT_FORMATS)}."
        )
    if options.input_format not in INPUT_FORMATS:
        raise UsageError(
            f"error: option '--input-format <format>' argument '{options.input_format}' is invalid. "
            f"Allowed choices are {', '.join(INPUT_FORMATS)}."
        )
    if options.permission_mode not in PERMISSION_MODES:
        raise UsageError(
            f"error: option '--permission-mode <mode>' argument '{options.permission_mode}' is invalid. "
            f"Allowed choices are {', '.join(PERMISSION_MODES)}."
        )
    if options.max_turns is not None:
        try:
            options.max_turns = int(options.max_turns)
        except ValueError:
            raise UsageError(f"error: --max-turns expects a number, got '{options.max_turns}'") from None
    if options.max_budget_usd is not None:
        try:
            options.max_budget_usd = float(options.max_budget_usd)
        except ValueError:
            options.max_budget_usd = -1.0
        if not options.max_budget_usd > 0:
            raise UsageError("error: --max-budget-usd must be a positive number")
    if not options.print and options.output_format != "text":
        raise UsageError("error: --output-format only works with --print (-p)")
    if options.output_format == "stream-json" and not options.verbose:
        raise UsageError("Error: When using --print, --output-format=stream-json requires --verbose")
    if options.input_format == "stream-json" and options.output_format != "stream-json":
        raise UsageError("Error: --input-format=stream-json requires output-format=stream-json.")
    if options.session_id is not None:
        try:
            uuid.UUID(options.session_id)
        except ValueError:
            raise UsageError("Error: Invalid session ID. Must be a valid UUID.") from None
    if (
        options.skip_permissions
        and hasattr(os, "geteuid")
        and os.geteuid() == 0
        and os.environ.get("IS_SANDBOX") != "1"
    ):
        raise UsageError("--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons")
    return options


# -- prompt --------------------------------------------------------------------------------
