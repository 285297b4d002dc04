"""The user's part of a prompt, its ``[[name:argument]]`` directives, and the role of the system prompt.

See the stand-in's package docstring for what each directive does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mpg_tui.sandbox.agent.options import ERROR_KINDS, Options

_DIRECTIVE_NAMES = "reply|echo|chars|recall|sleep|tool|bash|handoff|newsession|error|cost"
_DIRECTIVE = re.compile(rf"\[\[({_DIRECTIVE_NAMES})(?::([^\n]*?))?\]\]")
_ROLE = re.compile(r"^Your role:\s*(.+?)\s*$", re.MULTILINE)
_HISTORY_END = "</thread-history>"


class DirectiveError(Exception):
    """A directive with an argument the stand-in cannot use."""


@dataclass(frozen=True)
class Directive:
    name: str
    arg: str | None


def user_part(prompt: str) -> str:
    """The text after the thread-history block, or the whole prompt if there is none."""
    _, found, rest = prompt.rpartition(_HISTORY_END)
    return rest.lstrip("\n") if found else prompt


def parse_directives(text: str) -> list[Directive]:
    found = [Directive(m.group(1), m.group(2)) for m in _DIRECTIVE.finditer(text)]
    for directive in found:
        _check(directive)
    return found


def _check(directive: Directive) -> None:
    name, arg = directive.name, directive.arg
    problem = None
    if name in {"reply", "tool", "bash", "handoff", "chars", "sleep", "error", "cost"} and not arg:
        problem = "needs an argument"
    elif name == "cost" and not _is_number(arg or ""):
        problem = "expects a number of dollars"
    elif name == "chars" and not (arg or "").isdigit():
        problem = "expects a whole number of characters"
    elif name == "sleep" and not _is_number(arg or ""):
        problem = "expects a number of seconds"
    elif name == "handoff" and ":" not in (arg or ""):
        problem = "expects AGENT:TASK"
    elif name == "echo" and arg not in (None, "full"):
        problem = "takes no argument or 'full'"
    elif name in {"recall", "newsession"} and arg is not None:
        problem = "takes no argument"
    elif name == "error":
        kind, _, count = (arg or "").partition(":")
        if kind not in ERROR_KINDS:
            problem = f"kind must be one of {', '.join(ERROR_KINDS)}"
        elif kind == "flood" and not _is_number(count):
            problem = "flood expects a number of megabytes: [[error:flood:N]]"
    if problem:
        shown = f"[[{name}:{arg}]]" if arg is not None else f"[[{name}]]"
        raise DirectiveError(f"stand-in claude: bad directive {shown}: {problem}")


def _is_number(text: str) -> bool:
    try:
        return float(text) >= 0
    except ValueError:
        return False


def first_line(text: str) -> str:
    cleaned = _DIRECTIVE.sub("", text)
    return next((line.strip() for line in cleaned.splitlines() if line.strip()), "")


def role_of(options: Options) -> str | None:
    found = _ROLE.search(options.append_system_prompt) or _ROLE.search(options.system_prompt)
    return found.group(1) if found else None


def filler(count: int) -> str:
    """Exactly ``count`` characters of text, in lines of 80 (newline included)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    chars = ["\n" if i % 80 == 79 else letters[i % 26] for i in range(count)]
    if chars and chars[-1] == "\n":
        chars[-1] = "."
    return "".join(chars)
