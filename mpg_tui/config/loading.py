"""Reading ``config.json``: every problem becomes one :class:`ConfigError` for the operator.

The error names the file, the JSON path of each bad field and what was expected, in
JSON's words rather than pydantic's. Unknown keys and doubtful settings are logged
warnings, never errors.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mpg_tui.config.models import GatewayConfig, is_snowflake

log = logging.getLogger(__name__)

# Hints for keys MPG users are likely to have; shown with the unknown-key warning.
_KEY_HINTS = {
    "idleTimeoutMinutes": "MPG reads idleTimeoutMs; this key never had an effect",
}


class ConfigError(Exception):
    """A config file that cannot be used; the message is meant for the operator."""

    def __init__(self, path: Path | None, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        where = str(path) if path else "config"
        if len(problems) == 1:
            message = f"{where}: {problems[0]}"
        else:
            message = f"{where}: {len(problems)} problems:\n" + "\n".join(f"  {p}" for p in problems)
        super().__init__(message)


def _json_path(loc: tuple[int | str, ...], data: Any, *, missing: bool = False) -> str:
    """Render pydantic's error location as the JSON path a person would write.

    pydantic puts a tag into the location for each union member and validator function
    it went through (``list[...]``, ``function-after[...]``, a model name, ...). Rather than
    know those tags, walk the input alongside: a step that indexes into the data is part of
    the path, anything else is a tag, except a key that is reported missing.
    """
    parts: list[str] = []
    node = data
    for index, item in enumerate(loc):
        if isinstance(node, dict) and isinstance(item, str) and item in node:
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            node = node[item]
            parts.append(f"[{item}]")
            continue
        elif not (missing and index == len(loc) - 1):
            continue
        parts.append(f".{item}" if parts else str(item))
    return "".join(parts) or "(top level)"


# pydantic's wording, in JSON's terms.
_JSON_WORDS = (
    (re.compile(r"a valid dictionary or instance of \w+|a valid dictionary"), "an object"),
    (re.compile(r"a valid list"), "an array"),
    (re.compile(r"\bFalse\b"), "false"),
    (re.compile(r"\bTrue\b"), "true"),
)


def _expected(message: str) -> str:
    if message == "Field required":
        return "required but missing"
    for prefix, replacement in (("Input should be ", "expected "), ("Value error, ", ""), ("Assertion failed, ", "")):
        if message.startswith(prefix):
            message = replacement + message[len(prefix) :]
            break
    if message.startswith("expected "):
        for pattern, word in _JSON_WORDS:
            message = pattern.sub(word, message)
    return message


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _problems(exc: ValidationError, data: Any) -> list[str]:
    by_path: dict[str, tuple[list[str], Any, bool]] = {}
    for err in exc.errors():
        missing = err["type"] == "missing"
        path = _json_path(err["loc"], data, missing=missing)
        messages, _, _ = by_path.setdefault(path, ([], err.get("input"), missing))
        text = _expected(err["msg"])
        if text not in messages:
            messages.append(text)
    # A union reports one error per member; the member that got furthest into the input
    # (the deepest path) is the one the author meant, so a shallower error on the same
    # branch of the tree is dropped.
    paths = list(by_path)
    problems = []
    for path in paths:
        if any(other != path and (other.startswith(path + ".") or other.startswith(path + "[")) for other in paths):
            continue
        messages, got, missing = by_path[path]
        first, *rest = messages
        joined = " or ".join([first, *(m.removeprefix("expected ") for m in rest)])
        problems.append(f"{path}: {joined}" + ("" if missing else f" (got {_shown(got)})"))
    return problems


def config_warnings(config: GatewayConfig) -> list[str]:
    """Things that load but are probably not what the author meant, as readable sentences."""
    warnings = []
    for key in config.unknown_keys(""):
        hint = _KEY_HINTS.get(key.rsplit(".", 1)[-1])
        warnings.append(f"unknown key {key} (ignored{'; ' + hint if hint else ''})")
    defaults = config.defaults
    if defaults.allowed_tools and defaults.disallowed_tools:
        warnings.append("defaults sets both allowedTools and disallowedTools; allowedTools wins")
    for view in config.views():
        raw = view.raw
        where = f"projects.{view.key}"
        if not is_snowflake(view.key):
            warnings.append(f"{where}: {view.key!r} is not a Discord channel ID (17-20 digits)")
        if raw.allowed_tools and raw.disallowed_tools:
            warnings.append(f"{where} sets both allowedTools and disallowedTools; allowedTools wins")
        elif raw.disallowed_tools and raw.allowed_tools is None and defaults.allowed_tools:
            warnings.append(
                f"{where}.disallowedTools is ignored because the project inherits defaults.allowedTools; "
                'set "allowedTools": [] for disallow-only mode'
            )
    return warnings


def parse_config(data: Any, path: Path | None = None, *, base_dir: Path | None = None) -> GatewayConfig:
    """Validate already-parsed JSON; relative directories resolve against ``base_dir``.

    ``base_dir`` defaults to the config file's folder, or the current directory when
    there is no file.
    """
    if not isinstance(data, dict):
        raise ConfigError(path, ["(top level): expected a JSON object with 'defaults' and 'projects'"])
    if base_dir is None:
        base_dir = path.parent if path is not None else Path.cwd()
    try:
        config = GatewayConfig.model_validate(data, context={"base_dir": base_dir.absolute()})
    except ValidationError as exc:
        raise ConfigError(path, _problems(exc, data)) from None
    for warning in config_warnings(config):
        log.warning("%s: %s", path or "config", warning)
    return config


def load_config(path: Path) -> GatewayConfig:
    """Read and validate ``config.json``; every failure is a :class:`ConfigError`."""
    path = path.expanduser().absolute()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except IsADirectoryError:
        raise ConfigError(path, ["is a directory, expected a config.json file"]) from None
    except UnicodeDecodeError:
        raise ConfigError(path, ["not UTF-8 text"]) from None
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror}"]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(path, [f"line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"]) from None
    return parse_config(data, path)
