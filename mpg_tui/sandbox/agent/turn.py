"""One turn of the stand-in: what the directives ask for, the session it belongs to, its output and its end."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from mpg_tui.sandbox.agent.directives import filler, first_line, parse_directives, role_of, user_part
from mpg_tui.sandbox.agent.options import Options
from mpg_tui.sandbox.agent.output import Emitter, Meter, cost_of, token_usage
from mpg_tui.sandbox.agent.permissions import ControlRequests, Verdict, Withdrawn, settle
from mpg_tui.sandbox.agent.personas import DemoPersona
from mpg_tui.sandbox.agent.sessions import append_record, read_records, session_file

if TYPE_CHECKING:
    import threading

REJECTED = (
    "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it was a file edit, "
    "the new_string was NOT written to the file). STOP what you are doing and wait for the user to tell you how "
    "to proceed."
)
"""The tool result of a call whose permission request an interrupt withdrew (2.1.330's words)."""

# The wording, ``error`` tag and API error type of Claude Code 2.1.330 for each HTTP status
# (the part after "usually temporary" names the configured API host; it is left out here).
_API_ERRORS: dict[str, tuple[str, str, str]] = {
    "401": ("Invalid API key · Fix external API key", "authentication_failed", "authentication_error"),
    "429": (
        "API Error: Request rejected (429) · Number of requests has exceeded your rate limit.",
        "rate_limit",
        "rate_limit_error",
    ),
    "500": (
        "API Error: 500 Internal server error. This is a server-side issue, usually temporary — try again in a moment.",
        "server_error",
        "api_error",
    ),
    "529": (
        "API Error: 529 Overloaded. This is a server-side issue, usually temporary — try again in a moment.",
        "server_error",
        "overloaded_error",
    ),
}


class _BudgetReached(Exception):
    """``--max-budget-usd`` ended the turn before its reply."""


class Interrupted(Exception):
    """The host interrupted the running turn (a live session's ``interrupt`` control request)."""

    def __init__(self, during_tool: bool) -> None:
        super().__init__("interrupted")
        self.during_tool = during_tool


@dataclass
class LiveState:
    """What a live process (``--input-format stream-json``) keeps from one turn to the next."""

    stop: threading.Event
    """Set by the stdin reader when the host interrupts the running turn."""
    session_id: str | None = None
    spent_usd: float = 0.0
    results: int = 0
    requests: ControlRequests | None = None
    """The stand-in's own requests to the host (``can_use_tool``)."""


# -- output --------------------------------------------------------------------------------


class Turn:
    def __init__(self, options: Options, prompt: str, live: LiveState | None = None) -> None:
        self.live = live
        self.printed_result = False
        self.options = options
        self.prompt = prompt
        self.user = user_part(prompt)
        self.directives = parse_directives(self.user)
        self.role = role_of(options)
        self.cwd = os.getcwd()
        self.errors = [(d.arg or "").partition(":") for d in self.directives if d.name == "error"]
        self.pace = _env_float("MPG_AGENT_PACE", 1.0)
        costs = [float(d.arg or 0) for d in self.directives if d.name == "cost"]
        calls = 1 + sum(1 for d in self.directives if d.name in {"tool", "bash"})
        self.meter = Meter(costs[-1] if costs else None, calls, options.max_budget_usd)
        self.session_id: str | None = None

    def run(self) -> int:
        kinds = [kind for kind, _, _ in self.errors]
        failure = next((kind for kind in kinds if kind not in {"orphan", "flood"}), None)
        session_id, history = self._session()
        if session_id is None:
            return 1
        self.session_id = session_id  # the interactive mode carries on in it
        if "orphan" in kinds:
            self._start_orphan()
        if failure in {"crash", "garbage", "empty", "partial"}:
            return self._fail_early(failure)
        live = self.live
        if live is None:
            out = Emitter(self.options, session_id, self.cwd)
        else:
            out = Emitter(self.options, session_id, self.cwd, spent_before=live.spent_usd, result_index=live.results)
        path = session_file(self.cwd, session_id)
        append_record(path, session_id, self.cwd, "user", self.prompt)
        try:
            code = self._respond(out, failure, history, path)
        except Interrupted as stop:
            marker = "[Request interrupted by user" + (" for tool use]" if stop.during_tool else "]")
            append_record(path, session_id, self.cwd, "user", [{"type": "text", "text": marker}])
            out.interrupted(stop.during_tool)
            code = 1
        self.printed_result = out.results > 0
        if live is not None:
            live.spent_usd += out.turn_cost
            live.results += out.results
        return code

    def _respond(self, out: Emitter, failure: str | None, history: list[dict[str, Any]], path: Path) -> int:
        session_id = out.session_id
        out.init()
        if failure == "stubborn":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            _sleep_forever()  # deaf to interrupts too: only the end of its process group stops it
        if failure == "hang":
            self._pause(None, during_tool=False)
        if failure is not None:
            return self._fail_with_result(out, failure)
        for kind, _, megabytes in self.errors:
            if kind == "flood":
                _flood(out, float(megabytes))
        try:
            reply = self._work(out, history)
        except _BudgetReached:
            return self._budget_exhausted(out, "")
        append_record(path, session_id, self.cwd, "assistant", [{"type": "text", "text": reply}])
        out.text(reply)
        if self.meter.last_call(cost_of(out.usage(self.prompt, reply))):
            return self._budget_exhausted(out, reply)
        out.cost = self.meter.total
        out.result(self.prompt, reply)
        return 0

    def _budget_exhausted(self, out: Emitter, reply: str) -> int:
        assert self.options.max_budget_usd is not None  # only a cap ends a turn this way
        out.cost = self.meter.spent
        out.budget_exhausted(self.prompt, reply, self.options.max_budget_usd)
        return 1

    def _session(self) -> tuple[str | None, list[dict[str, Any]]]:
        """The session id to answer with and its earlier records (None: refused)."""
        live = self.live
        if live is not None and live.session_id is not None:
            return live.session_id, read_records(session_file(self.cwd, live.session_id))
        session_id, history = self._first_session()
        if live is not None:
            live.session_id = session_id
        return session_id, history

    def _first_session(self) -> tuple[str | None, list[dict[str, Any]]]:
        wants_new = any(d.name == "newsession" for d in self.directives)
        if self.options.resume:
            # Only sessions made in this directory resume. The real 2.1.330 resumes across
            # directories too; our tests rely on the stricter rule of older versions, which
            # is also the one MPG's README tells users about.
            path = session_file(self.cwd, self.options.resume)
            if not path.is_file():
                self._no_conversation(self.options.resume)
                return None, []
            history = read_records(path)
            if not wants_new:
                return self.options.resume, history
            fresh = str(uuid.uuid4())
            new_path = session_file(self.cwd, fresh)
            new_path.write_bytes(path.read_bytes())
            return fresh, history
        if self.options.session_id:
            if session_file(self.cwd, self.options.session_id).exists():
                sys.stderr.write(f"Error: Session ID {self.options.session_id} is already in use.\n")
                return None, []
            return self.options.session_id, []
        return str(uuid.uuid4()), []

    def _no_conversation(self, session_id: str) -> None:
        """How 2.1.330 fails a ``--resume`` it cannot find: stderr, and in stream-json a result line."""
        message = f"No conversation found with session ID: {session_id}"
        sys.stderr.write(message + "\n")
        if self.options.output_format == "stream-json":
            out = Emitter(self.options, session_id, self.cwd)
            result = out.result_object(self.prompt, "", is_error=True, subtype="error_during_execution")
            del result["result"]
            nothing = dict.fromkeys(token_usage("", ""), 0)
            result.update(
                num_turns=0, stop_reason=None, total_cost_usd=0, usage=nothing, modelUsage={}, errors=[message]
            )
            out.line(result)

    def _start_orphan(self) -> None:
        import subprocess  # only here: it is the slowest import and rarely needed

        child = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL)
        sys.stderr.write(f"started background process {child.pid}\n")
        sys.stderr.flush()
        _log({"pid": os.getpid(), "orphan_pid": child.pid})

    def _fail_early(self, failure: str) -> int:
        if failure == "crash":
            sys.stderr.write(
                "file:///usr/lib/node_modules/@anthropic-ai/claude-code/cli.js:1\n"
                "TypeError: Cannot read properties of undefined (reading 'content')\n"
                "    at processTurn (file:///usr/lib/node_modules/@anthropic-ai/claude-code/cli.js:1:4242)\n"
                "    at async main (file:///usr/lib/node_modules/@anthropic-ai/claude-code/cli.js:1:9001)\n"
                "\nNode.js v22.11.0\n"
            )
            return 2
        if failure == "garbage":
            sys.stdout.write("Welcome to Claude Code!\n<<binary noise>> \x1b[31m???\x1b[0m\nnot json at all\n")
            return 0
        if failure == "partial":
            line = json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": "cut off here"})
            sys.stdout.write(line[: len(line) // 2])
            return 0
        return 0  # empty

    def _fail_with_result(self, out: Emitter, failure: str) -> int:
        if failure == "max_turns":
            out.result(self.prompt, "", is_error=True, subtype="error_max_turns")
            return 1
        if failure in _API_ERRORS:
            message, tag, error_type = _API_ERRORS[failure]
            out.api_error(message, int(failure), tag, error_type)
            status = {"api_error_status": int(failure), "api_error_type": error_type}
            out.result(self.prompt, message, is_error=True, extra=status)
            return 1
        if failure == "auth":
            message = "Not logged in · Please run /login"
        else:
            reset = (int(time.time()) // 3600 + 1) * 3600
            message = f"Claude AI usage limit reached|{reset}"
        out.text(message)
        out.result(self.prompt, message, is_error=True)
        return 1

    def _work(self, out: Emitter, history: list[dict[str, Any]]) -> str:
        """Run the progress directives, then compose the reply."""
        shaped = any(d.name in {"reply", "echo", "chars", "recall"} for d in self.directives)
        persona = os.environ.get("MPG_AGENT_MODE") == "demo" and not shaped
        reply = None
        if persona:
            demo = DemoPersona(self.role, self.user, self.cwd, pace=self.pace, pause=self._pause, bash=self._bash)
            reply = demo.reply(out)
        for directive in self.directives:
            if directive.name == "tool":
                if self.meter.call():
                    raise _BudgetReached  # the call that asked for the tool spent the budget: not run
                name, _, target = (directive.arg or "").partition(":")
                out.tool(name, target)
            elif directive.name == "bash":
                if self.meter.call():
                    raise _BudgetReached
                self._bash(out, directive.arg or "", "(Bash completed with no output)")
            elif directive.name == "sleep":
                _sleep_with_ticks(out, float(directive.arg or 0), self._pause)
        if reply is None:
            reply = self._reply(history)
        handoffs = [d.arg.partition(":") for d in self.directives if d.name == "handoff" and d.arg]
        lines = [f"HANDOFF @{agent}: {task}" for agent, _, task in handoffs]
        return "\n\n".join([reply, "\n".join(lines)]) if lines else reply

    def _reply(self, history: list[dict[str, Any]]) -> str:
        reply = None
        for directive in self.directives:
            if directive.name == "reply":
                reply = (directive.arg or "").replace("\\n", "\n").replace("\\t", "\t")
                reply = reply.replace("\\[", "[").replace("\\]", "]")
            elif directive.name == "echo":
                reply = self.prompt if directive.arg == "full" else self.user
            elif directive.name == "chars":
                reply = filler(int(directive.arg or 0))
            elif directive.name == "recall":
                # Prompts only: an interrupted turn leaves a marker (a list of blocks) after its prompt.
                earlier = [r for r in history if r.get("type") == "user" and isinstance(_content(r), str)]
                content = _content(earlier[-1]) if earlier else None
                reply = f"previous: {content}" if isinstance(content, str) else "previous: (none)"
        if reply is not None:
            return reply
        return f"[{self.role or 'claude'}] {first_line(self.user)}".rstrip()

    def _bash(self, out: Emitter, command: str, output: str, *, pause: float = 0.0) -> tuple[str, Verdict]:
        """A Bash call settled as the CLI settles it (:mod:`.permissions`): run with the input
        it was allowed with, or refused with the denial as its result. Returns what ran."""
        wanted = {"command": command, "description": "Run " + command.split(" ", 1)[0]}
        tool_id = out.tool_use("Bash", wanted)
        requests = self.live.requests if self.live is not None else None
        try:
            verdict = settle(self.options, requests, "Bash", wanted, tool_id)
        except Withdrawn:
            out.tool_result(tool_id, REJECTED, is_error=True)
            raise Interrupted(during_tool=True) from None
        ran = str(verdict.input.get("command") or command)
        if not verdict.allowed:
            out.denied(tool_id, "Bash", wanted, verdict.message)
            return ran, verdict
        if self.pace > 0 and pause > 0:
            self._pause(pause * self.pace, during_tool=True)
        out.tool_result(tool_id, output)
        return ran, verdict

    def _pause(self, seconds: float | None, *, during_tool: bool) -> None:
        """Take ``seconds`` (None: for ever); in a live session an interrupt ends the wait and the turn."""
        if self.live is None:
            if seconds is None:
                _sleep_forever()
            time.sleep(seconds)
        elif self.live.stop.wait(seconds):
            raise Interrupted(during_tool)


def _content(record: dict[str, Any]) -> object:
    message = record.get("message")
    return message.get("content") if isinstance(message, dict) else None


def _sleep_with_ticks(out: Emitter, seconds: float, pause: Callable[..., None]) -> None:
    ticks = max(1, round(seconds / 0.2))
    for tick in range(ticks):
        out.tool("Bash", f"sleep {seconds:g}  # step {tick + 1}/{ticks}")
        pause(seconds / ticks, during_tool=True)


def _flood(out: Emitter, megabytes: float) -> None:
    line = "flood " + "x" * 1017 + "\n"  # 1 KiB a line
    block = line * 64
    for _ in range(int(megabytes * 1024) // 64):
        out.raw(block)


def _sleep_forever() -> NoReturn:
    while True:
        time.sleep(3600)


def _env_float(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


def _log(entry: dict[str, Any]) -> None:
    path = os.environ.get("MPG_AGENT_LOG")
    if not path:
        return
    data = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
    # One write with O_APPEND so concurrent stand-ins never interleave their lines.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
