"""Turn what the claude CLI printed into progress and a :class:`RunResult`.

One parser serves both runners: the direct runner feeds it pipe reads, the tmux runner
feeds it a growing output file. It accepts, in any mix, the single ``--output-format
json`` object, ``stream-json`` NDJSON (``system``/``assistant``/``user`` lines, the
``result`` line last), the JSON array ``--output-format json --verbose`` prints, and
lines that are not JSON at all (ignored). Reads may split a line anywhere.

Memory stays bounded whatever claude prints: the parser keeps the ``result`` object, the
session id, and a short tail of the other output for error messages; nothing else.

:meth:`OutputParser.finish` maps every way a run can end to ``ok`` or to an
``error_kind`` plus one sentence a person in the thread can act on.
"""

from __future__ import annotations

import json
import re
import signal
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mpg_tui.core.runner import ErrorKind, Progress, RunResult, Usage

MAX_LINE_CHARS = 32 * 1024 * 1024
"""A line longer than this is dropped unparsed (a real result line is far smaller)."""
TAIL_CHARS = 2000
"""How much of the non-result output and of stderr an error message may quote."""
_TAIL_LINE_CHARS = 300
_SUMMARY_CHARS = 160

# Which input field names the thing a tool works on, most telling first.
_TOOL_TARGET_KEYS = (
    "file_path",
    "notebook_path",
    "pattern",
    "command",
    "url",
    "query",
    "path",
    "description",
    "prompt",
)


class OutputParser:
    """Incremental parser for one claude run's standard output.

    Feed it whole lines with :meth:`feed_line` or arbitrary chunks with :meth:`feed`,
    then call :meth:`finish` once the process has ended.
    """

    def __init__(self, *, cwd: Path | str | None = None) -> None:
        self._cwd = str(cwd).rstrip("/") + "/" if cwd else None
        self._result: dict[str, Any] | None = None
        self._session_id: str | None = None
        self._tail: deque[str] = deque()
        self._tail_len = 0
        self._saw_output = False
        self._pending: list[str] = []
        self._pending_len = 0
        self._discarding = False

    @property
    def session_id(self) -> str | None:
        """The session id claude announced (init line or result), if any yet."""
        if self._result is not None and isinstance(self._result.get("session_id"), str):
            return str(self._result["session_id"])
        return self._session_id

    @property
    def has_result(self) -> bool:
        return self._result is not None

    def feed(self, chunk: str) -> list[Progress]:
        """Take any slice of output; complete lines are parsed, the rest waits for more."""
        progress: list[Progress] = []
        start = 0
        while True:
            end = chunk.find("\n", start)
            if end < 0:
                self._hold(chunk[start:])
                return progress
            piece = chunk[start:end]
            start = end + 1
            if self._discarding:
                self._discarding = False
                continue
            if self._pending:
                self._pending.append(piece)
                piece = "".join(self._pending)
                self._pending.clear()
                self._pending_len = 0
            progress.extend(self._parse_line(piece))

    def feed_object(self, obj: dict[str, Any]) -> list[Progress]:
        """Take one line its reader has already parsed (the live runner reads claude's lines
        itself, to pick out control messages); the progress worth showing for it."""
        self._saw_output = True
        return self._parse_object(obj, None)

    def feed_line(self, line: str) -> Progress | None:
        """Parse one complete line; returns the progress worth showing for it, if any.

        A line rarely carries more than one content block; when it does, the last one
        (what claude is doing now) is returned.
        """
        found = self._parse_line(line)
        return found[-1] if found else None

    def finish(
        self,
        exit_code: int | None,
        stderr: str,
        *,
        timed_out: bool = False,
        cancelled: bool = False,
        timeout_s: float | None = None,
    ) -> RunResult:
        """Decide how the run ended. ``exit_code`` is negative when a signal ended it."""
        if self._pending and not self._discarding:
            # The last line had no newline: claude exited (or the file ended) mid-line.
            line = "".join(self._pending)
            self._pending.clear()
            self._parse_line(line)
        stderr_tail = _tail_text(stderr, TAIL_CHARS)
        common: dict[str, Any] = {
            "session_id": self.session_id,
            "exit_code": exit_code,
            "stderr_tail": stderr_tail,
        }
        if cancelled:
            return RunResult(ok=False, error="The run was cancelled.", error_kind="cancelled", **common)
        if timed_out:
            limit = f" within {_duration_words(timeout_s)}" if timeout_s else " in time"
            error = f"Claude did not finish{limit}; the run was stopped."
            return RunResult(ok=False, error=error, error_kind="timeout", **common)
        if self._result is not None:
            return self._from_result(self._result, common, stderr)
        missing = _session_not_found(stderr)
        if missing:
            return RunResult(ok=False, error=missing, error_kind="session_not_found", **common)
        output_tail = self._output_tail()
        if exit_code:
            how = f"was killed by {_signal_name(-exit_code)}" if exit_code < 0 else f"exited with code {exit_code}"
            error = _with_tail(f"Claude {how} without a result.", stderr_tail or output_tail)
            return RunResult(ok=False, error=error, error_kind="crash", **common)
        if self._saw_output:
            error = _with_tail("claude printed no result.", output_tail)
            return RunResult(ok=False, error=error, error_kind="crash", **common)
        error = _with_tail("Claude finished without saying anything.", stderr_tail)
        return RunResult(ok=False, error=error, error_kind="empty", **common)

    # -- lines ---------------------------------------------------------------------------

    def _hold(self, rest: str) -> None:
        if not rest or self._discarding:
            return
        self._pending.append(rest)
        self._pending_len += len(rest)
        if self._pending_len > MAX_LINE_CHARS:
            self._pending.clear()
            self._pending_len = 0
            self._discarding = True
            self._saw_output = True
            self._remember(f"[a line longer than {MAX_LINE_CHARS // (1024 * 1024)} MB was dropped]")

    def _parse_line(self, line: str) -> list[Progress]:
        text = line.strip()
        if not text:
            return []
        self._saw_output = True
        if text[0] in "{[":
            try:
                data = json.loads(text)
            except ValueError:
                data = None
            if isinstance(data, dict):
                return self._parse_object(data, text)
            if isinstance(data, list):
                found: list[Progress] = []
                for item in data:
                    if isinstance(item, dict):
                        found.extend(self._parse_object(item, None))
                return found
        self._remember(text)
        return []

    def _parse_object(self, obj: dict[str, Any], raw: str | None) -> list[Progress]:
        kind = obj.get("type")
        if kind == "result":
            self._result = obj
            return []
        if kind == "system" and obj.get("subtype") == "init":
            session_id = obj.get("session_id")
            if isinstance(session_id, str):
                self._session_id = session_id
            model = obj.get("model")
            text = f"Claude started ({model})" if isinstance(model, str) and model else "Claude started"
            return [Progress(step="init", text=text, session_id=self._session_id)]
        if kind == "assistant":
            return self._assistant_progress(obj)
        if kind in {"user", "system", "stream_event"}:
            return []
        if raw is not None:
            self._remember(raw)
        return []

    def _assistant_progress(self, obj: dict[str, Any]) -> list[Progress]:
        if obj.get("is_api_error_message") is True:
            return []  # the CLI's own wording of a failed API call, not claude at work: the result reports it
        message = obj.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            return []
        found: list[Progress] = []
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use":
                name = str(block.get("name") or "tool")
                tool_input = block.get("input")
                found.append(Progress(step="tool", tool=name, text=self.summarize_tool(name, tool_input)))
            elif block.get("type") == "text":
                first = _first_line(str(block.get("text") or ""))
                if first:
                    found.append(Progress(step="text", text=first))
        return found

    def summarize_tool(self, name: str, tool_input: object) -> str:
        """``Read src/app.py``-style summary of a tool call (paths shown relative to cwd)."""
        target = ""
        if isinstance(tool_input, dict):
            for key in _TOOL_TARGET_KEYS:
                value = tool_input.get(key)
                if isinstance(value, str) and value.strip():
                    target = value
                    break
            else:
                target = next((v for v in tool_input.values() if isinstance(v, str) and v.strip()), "")
        if self._cwd and target.startswith(self._cwd):
            target = target[len(self._cwd) :]
        target = _first_line(target)
        return _clip(f"{name} {target}" if target else name, _SUMMARY_CHARS)

    # -- results -------------------------------------------------------------------------

    def _from_result(self, result: dict[str, Any], common: dict[str, Any], stderr: str) -> RunResult:
        text = result.get("result")
        text = text if isinstance(text, str) else ""
        metrics: dict[str, Any] = {
            "text": text,
            "cost_usd": _turn_cost(result),
            "usage": _usage(result.get("usage")),
            "duration_ms": _int(result.get("duration_ms")),
            "num_turns": _int(result.get("num_turns")),
        }
        subtype = result.get("subtype")
        if subtype == "error_max_turns":
            error = "Claude hit the --max-turns limit before finishing."
            return RunResult(ok=False, error=error, error_kind="max_turns", **metrics, **common)
        if subtype == "error_max_budget_usd":
            # Claude ended the turn at --max-budget-usd (no ``result`` field, exit 1). The text
            # the model wrote before the cap is not a finished answer, so it is not a reply.
            cap = _errors_text(result.get("errors"))
            error = f"Claude stopped this turn at its spending cap after ${metrics['cost_usd']:.2f}"
            error += f" ({cap})." if cap else "."
            return RunResult(ok=False, error=error, error_kind="max_budget", **metrics, **common)
        if result.get("is_error") is True or (isinstance(subtype, str) and subtype.startswith("error")):
            # An error result without text (``error_during_execution``) says why in ``errors``.
            message = text or _errors_text(result.get("errors")) or str(subtype or "")
            # With stream-json, a --resume that finds nothing still prints a result line.
            missing = _session_not_found(message) or _session_not_found(stderr)
            if missing:
                # That result line echoes the ID it could not find: it names no session.
                common = {**common, "session_id": None}
                return RunResult(ok=False, error=missing, error_kind="session_not_found", **metrics, **common)
            status = result.get("api_error_status")
            kind, error = classify_error(message, status=status if isinstance(status, int) else None)
            return RunResult(ok=False, error=error, error_kind=kind, **metrics, **common)
        return RunResult(ok=True, **metrics, **common)

    def _remember(self, text: str) -> None:
        line = _clip(text, _TAIL_LINE_CHARS)
        self._tail.append(line)
        self._tail_len += len(line) + 1
        while self._tail_len > TAIL_CHARS and len(self._tail) > 1:
            self._tail_len -= len(self._tail.popleft()) + 1

    def _output_tail(self) -> str:
        return "\n".join(self._tail)


_NO_CONVERSATION = re.compile(r"No conversation found(?: with session ID:?)?\s*(\S*)", re.IGNORECASE)
# ``--resume`` given something that is neither a session id nor a session title.
_NOT_RESUMABLE = re.compile(r"--resume requires a valid session ID", re.IGNORECASE)
_USAGE_RESET = re.compile(r"\|(\d{9,11})\b")


def _session_not_found(text: str) -> str | None:
    """The sentence for a session claude cannot resume, if ``text`` says so."""
    missing = _NO_CONVERSATION.search(text)
    if missing:
        return (
            f"Claude could not find conversation {missing.group(1)} to resume (it was deleted, or it was "
            "started from another directory or with another claude configuration)."
        )
    if _NOT_RESUMABLE.search(text):
        return "Claude could not resume the stored session: its ID is not one claude knows."
    return None


def _errors_text(errors: object) -> str:
    if isinstance(errors, list):
        return "\n".join(str(item) for item in errors if isinstance(item, str) and item.strip())
    return ""


def classify_error(message: str, *, status: int | None = None) -> tuple[ErrorKind, str]:
    """Map the text of an ``is_error`` result to an error kind and a readable sentence.

    ``status`` is the HTTP status the result reports (``api_error_status``) when it does;
    otherwise it is read from the text, where each CLI version words it its own way.
    """
    detail = _clip(_first_line(message), 300)
    lowered = message.lower()
    status = status if status is not None else _api_status(message)
    if "not logged in" in lowered:
        return "auth", "Claude is not logged in on the gateway host — run `claude` there and /login."
    if status == 401 or "invalid api key" in lowered or "authentication_error" in lowered or "/login" in lowered:
        return "auth", (
            "Claude's credentials were rejected (API error 401) — run `claude` on the gateway host and /login again."
        )
    if "usage limit" in lowered or "limit reached" in lowered:
        reset = _USAGE_RESET.search(message)
        if reset:
            at = datetime.fromtimestamp(int(reset.group(1)), tz=UTC)
            return "usage_limit", f"Claude's usage limit has been reached; it resets at {at:%Y-%m-%d %H:%M} UTC."
        return "usage_limit", f"Claude's usage limit has been reached ({detail})."
    if status == 429 or "rate_limit" in lowered:
        return "rate_limit", "The Claude API is rate limiting this account (429); try again in a minute."
    if status == 529 or "overloaded" in lowered:
        return "overloaded", "The Claude API is overloaded (529); try again shortly."
    if status is not None and status >= 500:
        return "overloaded", f"The Claude API failed with a server error ({status}); try again shortly."
    if status is not None or "api error" in lowered:
        return "api", f"The Claude API refused the request: {detail}"
    return "api", f"Claude reported an error: {detail or 'no details'}"


# "API Error: 500 Internal server error", and since 2.1.x "API Error: Request rejected (429) · ...".
_API_STATUS = re.compile(r"API Error:?\s*(?:(\d{3})\b|[^(\n]{0,60}\((\d{3})\))", re.IGNORECASE)


def _api_status(message: str) -> int | None:
    found = _API_STATUS.search(message)
    return int(found.group(1) or found.group(2)) if found else None


def missing_cli_result(executable: str) -> RunResult:
    """The result both runners give when the claude executable cannot be started."""
    error = (
        f"`{executable}` was not found on PATH (or is not executable) on the gateway host — install Claude Code "
        "(npm install -g @anthropic-ai/claude-code) and log in with `claude`."
    )
    return RunResult(ok=False, error=error, error_kind="missing_cli")


def _usage(raw: object) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(
        input_tokens=_int(raw.get("input_tokens")),
        output_tokens=_int(raw.get("output_tokens")),
        cache_creation_input_tokens=_int(raw.get("cache_creation_input_tokens")),
        cache_read_input_tokens=_int(raw.get("cache_read_input_tokens")),
    )


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _float(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return _clip(line.strip(), _SUMMARY_CHARS)
    return ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tail_text(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def _with_tail(sentence: str, tail: str) -> str:
    return f"{sentence}\n{tail}" if tail else sentence


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _duration_words(seconds: float | None) -> str:
    if seconds is None:
        return "the time limit"
    if seconds < 60:
        return f"{seconds:g} s"
    return f"{seconds / 60:g} min"


def _turn_cost(result: dict[str, Any]) -> float:
    """What this turn cost. ``total_cost_usd`` counts everything the process spent, and after
    ``--resume`` the resumed session's earlier turns too (CLI 2.1.330); the turn's own share is
    ``model_usage_since_last_result``, where the CLI gives it."""
    since_last = result.get("model_usage_since_last_result")
    if isinstance(since_last, dict) and since_last:
        return sum(_float(usage.get("costUSD")) for usage in since_last.values() if isinstance(usage, dict))
    return _float(result.get("total_cost_usd", result.get("cost_usd")))
