"""A stand-in for ``claude --print``, for tests, end-to-end runs, benchmarks and the demo.

It is spawned once per turn, so it imports only the standard library and starts fast.
:func:`install_shim` writes an executable ``claude`` that runs this file; put its
directory first on ``PATH`` (or use its path as ``RunRequest.command``).

Command line
    The flags of the real CLI: ``-p/--print``, ``--output-format text|json|stream-json``,
    ``--verbose``, ``-r/--resume ID``, ``--session-id UUID``, ``--append-system-prompt``,
    ``--system-prompt``, ``--allowed-tools/--allowedTools`` and
    ``--disallowed-tools/--disallowedTools`` (variadic: they take every following word
    that does not start with ``-``, a prompt too), ``--add-dir`` (variadic),
    ``--permission-mode``, ``--model``, ``--max-turns``, ``--dangerously-skip-permissions``,
    ``--version``. As with the real one: an unknown flag is an error (exit 1),
    ``stream-json`` needs ``--verbose``, ``--dangerously-skip-permissions`` is refused for
    root unless ``IS_SANDBOX=1``. The prompt is a trailing argument or standard input.

Sessions
    Kept like the real CLI's under ``$CLAUDE_CONFIG_DIR`` (else ``~/.claude``) in
    ``projects/<cwd with / replaced by ->/<session id>.jsonl``; each turn appends the
    prompt and the reply. ``--resume ID`` of a session not made in this directory fails
    with ``No conversation found with session ID: ID`` on stderr and exit 1; with
    ``stream-json`` also a ``result`` line of subtype ``error_during_execution`` whose
    ``errors`` say the same (as 2.1.330 does), otherwise no output.

Reply
    ``[<role>] <first line of the user's part>``, where the role comes from a
    ``Your role: X`` line of the system prompt (else ``claude``) and the user's part is
    the prompt after a ``<thread-history>…</thread-history>`` block, if there is one.

Directives
    Written ``[[name]]`` or ``[[name:argument]]`` in the user's part (never read from
    the history block), on one line; text in double brackets with any other name is
    left alone. A directive with a bad argument fails the run (stderr, exit 2).

    ``[[reply:TEXT]]``        reply exactly TEXT (``\\n`` and ``\\t`` escapes allowed)
    ``[[echo]]``              reply with the user's part verbatim
    ``[[echo:full]]``         reply with the whole prompt verbatim (history included)
    ``[[chars:N]]``           reply with exactly N characters, in lines of 80
    ``[[recall]]``            reply with the previous prompt of this session
    ``[[sleep:S]]``           take S more seconds, with a tool_use progress line every 0.2 s
    ``[[tool:NAME:TARGET]]``  use tool NAME on TARGET (a tool_use + tool_result pair)
    ``[[handoff:AGENT:TASK]]`` end the reply with the line ``HANDOFF @AGENT: TASK``
    ``[[newsession]]``        answer with a new session id, even when resuming
    ``[[error:KIND]]``        fail the way the real CLI does:

    ``auth``      is_error result "Not logged in · Please run /login", exit 1
    ``401|429|500|529``  is_error result in 2.1.330's words ("Invalid API key · Fix external
                  API key", "API Error: Request rejected (429) · …", "API Error: 500 …")
                  carrying ``api_error_status``, after the CLI's synthetic assistant
                  message (``is_api_error_message``), exit 1
    ``usage``     is_error result "Claude AI usage limit reached|<reset epoch>", exit 1
    ``max_turns`` result with subtype ``error_max_turns`` and no ``result``, exit 1
    ``crash``     a Node-style stack trace on stderr, no output, exit 2
    ``garbage``   lines that are not JSON, exit 0
    ``empty``     no output at all, exit 0
    ``partial``   the first half of a result line, then exit 0
    ``hang``      announce the session, then never finish
    ``stubborn``  like ``hang``, but ignore SIGTERM (only SIGKILL ends it)
    ``flood:N``   N MB of junk lines before a normal reply
    ``orphan``    start ``sleep 300`` in our process group, left behind when we exit;
                  combines with the others (``[[error:orphan]] [[error:hang]]``)

Environment
    ``MPG_AGENT_MODE=demo``  persona replies for the demo: a Product Manager plans and
                             hands off to @engineer (approves when the new message
                             has ``HANDOFF @pm``); a Software Engineer shows Read/Grep/Edit/
                             Bash(git) progress and hands back with
                             ``HANDOFF @pm: ready for review``; no role: one helpful
                             paragraph. Deterministic. Directives still win.
    ``MPG_AGENT_PACE=F``     multiply the demo personas' pauses by F (0 = no pauses).
    ``MPG_AGENT_LOG=FILE``   append one JSON line per invocation: argv, cwd, prompt,
                             sorted environment variable names, pid (and a line with
                             ``orphan_pid`` when one is started).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

VERSION = "2.1.0 (Claude Code stand-in)"
MODEL = "claude-sonnet-4-5-20250929"
DEFAULT_TOOLS = ["Task", "Bash", "Glob", "Grep", "Read", "Edit", "Write", "WebFetch", "TodoWrite", "WebSearch"]
OUTPUT_FORMATS = ("text", "json", "stream-json")
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
_TOOL_INPUT_KEY = {
    "Read": "file_path",
    "Edit": "file_path",
    "Write": "file_path",
    "NotebookEdit": "notebook_path",
    "Grep": "pattern",
    "Glob": "pattern",
    "Bash": "command",
    "WebFetch": "url",
    "WebSearch": "query",
    "Task": "description",
}
_PATH_TOOLS = {"Read", "Edit", "Write", "NotebookEdit"}
_DIRECTIVE = re.compile(r"\[\[(reply|echo|chars|recall|sleep|tool|handoff|newsession|error)(?::([^\n]*?))?\]\]")
_ROLE = re.compile(r"^Your role:\s*(.+?)\s*$", re.MULTILINE)
_HISTORY_END = "</thread-history>"

# flag -> (option name, arity: 0 = switch, 1 = one value, -1 = one or more values)
_FLAGS: dict[str, tuple[str, int]] = {
    "-p": ("print", 0),
    "--print": ("print", 0),
    "--output-format": ("output_format", 1),
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
    "--dangerously-skip-permissions": ("skip_permissions", 0),
    "-v": ("version", 0),
    "--version": ("version", 0),
    "-h": ("help", 0),
    "--help": ("help", 0),
}


class UsageError(Exception):
    """A command line the real CLI would refuse; the message is what it prints."""


class DirectiveError(Exception):
    """A directive with an argument the stand-in cannot use."""


@dataclass
class Options:
    print: bool = False
    output_format: str = "text"
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
    skip_permissions: bool = False
    version: bool = False
    help: bool = False
    prompt_args: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Directive:
    name: str
    arg: str | None


def install_shim(bin_dir: Path) -> Path:
    """Write an executable ``claude`` into ``bin_dir`` that runs this stand-in."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "claude"
    # -P keeps the working directory (a project that may hold a json.py) off sys.path.
    python, script = shlex.quote(sys.executable), shlex.quote(str(Path(__file__).resolve()))
    shim.write_text(f'#!/bin/sh\nexec {python} -P {script} "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    return shim


# -- command line --------------------------------------------------------------------------


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
    if not options.print:
        raise UsageError("error: this stand-in for claude only runs with --print (-p)")
    if options.output_format == "stream-json" and not options.verbose:
        raise UsageError("Error: When using --print, --output-format=stream-json requires --verbose")
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
    if name in {"reply", "tool", "handoff", "chars", "sleep", "error"} and not arg:
        problem = "needs an argument"
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


# -- sessions ------------------------------------------------------------------------------


def config_dir() -> Path:
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(configured) if configured else Path.home() / ".claude"


def session_file(cwd: str, session_id: str) -> Path:
    return config_dir() / "projects" / cwd.replace("/", "-") / f"{session_id}.jsonl"


def _read_records(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def _append_record(path: Path, session_id: str, cwd: str, role: str, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "type": role,
        "sessionId": session_id,
        "cwd": cwd,
        "uuid": str(uuid.uuid4()),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "message": {"role": role, "content": content},
    }
    with path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(record, ensure_ascii=False) + "\n")


# -- output --------------------------------------------------------------------------------


class Emitter:
    """Writes what the real CLI would for the chosen output format."""

    def __init__(self, options: Options, session_id: str, cwd: str) -> None:
        self.format = options.output_format
        self.options = options
        self.session_id = session_id
        self.cwd = cwd
        self.tool_uses = 0
        self.started = time.monotonic()

    def raw(self, text: str) -> None:
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.buffer.flush()

    def line(self, obj: dict[str, Any]) -> None:
        self.raw(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")

    def init(self) -> None:
        if self.format != "stream-json":
            return
        tools = self.options.allowed_tools or DEFAULT_TOOLS
        self.line(
            {
                "type": "system",
                "subtype": "init",
                "cwd": self.cwd,
                "session_id": self.session_id,
                "tools": [t for part in tools for t in re.split(r"[,\s]+", part) if t],
                "mcp_servers": [],
                "model": self.options.model,
                "permissionMode": self.options.permission_mode,
                "slash_commands": [],
                "apiKeySource": "none",
                "claude_code_version": VERSION.split()[0],
                "output_style": "default",
                "uuid": str(uuid.uuid4()),
            }
        )

    def tool(self, name: str, target: str) -> None:
        self.tool_uses += 1
        if self.format != "stream-json":
            return
        key = _TOOL_INPUT_KEY.get(name, "target")
        value = os.path.join(self.cwd, target) if name in _PATH_TOOLS and target else target
        tool_id = "toolu_" + uuid.uuid4().hex[:24]
        self._assistant([{"type": "tool_use", "id": tool_id, "name": name, "input": {key: value}}])
        self.line(
            {
                "type": "user",
                "message": {
                    "role": "user",
                    "content": [{"tool_use_id": tool_id, "type": "tool_result", "content": f"{name} done"}],
                },
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": str(uuid.uuid4()),
            }
        )

    def text(self, text: str) -> None:
        if self.format == "stream-json":
            self._assistant([{"type": "text", "text": text}])

    def api_error(self, message: str, status: int, tag: str, error_type: str) -> None:
        """The CLI's own assistant message for a failed API call (not claude's words)."""
        if self.format == "stream-json":
            self._assistant(
                [{"type": "text", "text": message}],
                model="<synthetic>",
                error=tag,
                is_api_error_message=True,
                api_error_status=status,
                api_error_type=error_type,
            )

    def _assistant(self, content: list[dict[str, Any]], *, model: str | None = None, **extra: Any) -> None:
        self.line(
            {
                "type": "assistant",
                "message": {
                    "id": "msg_" + uuid.uuid4().hex[:24],
                    "type": "message",
                    "role": "assistant",
                    "model": model or self.options.model,
                    "content": content,
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                },
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": str(uuid.uuid4()),
                **extra,
            }
        )

    def result(
        self,
        prompt: str,
        reply: str,
        *,
        is_error: bool = False,
        subtype: str = "success",
        extra: dict[str, Any] | None = None,
    ) -> None:
        result = {**self.result_object(prompt, reply, is_error=is_error, subtype=subtype), **(extra or {})}
        if self.format == "text":
            self.raw(("Error: Reached max turns" if subtype == "error_max_turns" else reply) + "\n")
        else:
            self.line(result)

    def result_object(self, prompt: str, reply: str, *, is_error: bool, subtype: str) -> dict[str, Any]:
        usage = token_usage(prompt + self.options.append_system_prompt + self.options.system_prompt, reply)
        cost = cost_of(usage)
        elapsed = int((time.monotonic() - self.started) * 1000)
        result: dict[str, Any] = {
            "type": "result",
            "subtype": subtype,
            "is_error": is_error,
            "duration_ms": elapsed,
            "duration_api_ms": max(0, elapsed - 5),
            "num_turns": 1 + self.tool_uses,
            "result": reply,
            "stop_reason": "end_turn",
            "session_id": self.session_id,
            "total_cost_usd": cost,
            "usage": {**usage, "server_tool_use": {"web_search_requests": 0}, "service_tier": "standard"},
            "modelUsage": {
                self.options.model: {
                    "inputTokens": usage["input_tokens"],
                    "outputTokens": usage["output_tokens"],
                    "cacheReadInputTokens": usage["cache_read_input_tokens"],
                    "cacheCreationInputTokens": usage["cache_creation_input_tokens"],
                    "webSearchRequests": 0,
                    "costUSD": cost,
                    "contextWindow": 200000,
                }
            },
            "permission_denials": [],
            "uuid": str(uuid.uuid4()),
        }
        if subtype == "error_max_turns":
            del result["result"]
        return result


def token_usage(prompt: str, reply: str) -> dict[str, int]:
    """Deterministic token counts: about four characters a token."""
    return {
        "input_tokens": len(prompt) // 4 + 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1024,
        "output_tokens": len(reply) // 4 + 1,
    }


def cost_of(usage: dict[str, int]) -> float:
    """Dollars at Sonnet-like prices per million tokens."""
    dollars = (
        usage["input_tokens"] * 3.0
        + usage["output_tokens"] * 15.0
        + usage["cache_creation_input_tokens"] * 3.75
        + usage["cache_read_input_tokens"] * 0.3
    ) / 1_000_000
    return round(dollars, 8)


# -- one turn ------------------------------------------------------------------------------


class Turn:
    def __init__(self, options: Options, prompt: str) -> None:
        self.options = options
        self.prompt = prompt
        self.user = user_part(prompt)
        self.directives = parse_directives(self.user)
        self.role = role_of(options)
        self.cwd = os.getcwd()
        self.errors = [(d.arg or "").partition(":") for d in self.directives if d.name == "error"]
        self.pace = _env_float("MPG_AGENT_PACE", 1.0)

    def run(self) -> int:
        kinds = [kind for kind, _, _ in self.errors]
        failure = next((kind for kind in kinds if kind not in {"orphan", "flood"}), None)
        session_id, history = self._session()
        if session_id is None:
            return 1
        if "orphan" in kinds:
            self._start_orphan()
        if failure in {"crash", "garbage", "empty", "partial"}:
            return self._fail_early(failure)
        out = Emitter(self.options, session_id, self.cwd)
        path = session_file(self.cwd, session_id)
        _append_record(path, session_id, self.cwd, "user", self.prompt)
        out.init()
        if failure in {"hang", "stubborn"}:
            if failure == "stubborn":
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            _sleep_forever()
        if failure is not None:
            return self._fail_with_result(out, failure)
        for kind, _, megabytes in self.errors:
            if kind == "flood":
                _flood(out, float(megabytes))
        reply = self._work(out, history)
        _append_record(path, session_id, self.cwd, "assistant", [{"type": "text", "text": reply}])
        out.text(reply)
        out.result(self.prompt, reply)
        return 0

    def _session(self) -> tuple[str | None, list[dict[str, Any]]]:
        """The session id to answer with and its earlier records (None: refused)."""
        wants_new = any(d.name == "newsession" for d in self.directives)
        if self.options.resume:
            # Only sessions made in this directory resume. The real 2.1.330 resumes across
            # directories too; our tests rely on the stricter rule of older versions, which
            # is also the one MPG's README tells users about.
            path = session_file(self.cwd, self.options.resume)
            if not path.is_file():
                self._no_conversation(self.options.resume)
                return None, []
            history = _read_records(path)
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
        reply = self._persona(out) if persona else None
        for directive in self.directives:
            if directive.name == "tool":
                name, _, target = (directive.arg or "").partition(":")
                out.tool(name, target)
            elif directive.name == "sleep":
                _sleep_with_ticks(out, float(directive.arg or 0))
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
            elif directive.name == "echo":
                reply = self.prompt if directive.arg == "full" else self.user
            elif directive.name == "chars":
                reply = filler(int(directive.arg or 0))
            elif directive.name == "recall":
                earlier = [r for r in history if r.get("type") == "user"]
                content = earlier[-1].get("message", {}).get("content") if earlier else None
                reply = f"previous: {content}" if isinstance(content, str) else "previous: (none)"
        if reply is not None:
            return reply
        return f"[{self.role or 'claude'}] {first_line(self.user)}".rstrip()

    # -- demo personas ---------------------------------------------------------------------

    def _persona(self, out: Emitter) -> str:
        role = (self.role or "").lower()
        task = first_line(self.user) or "the request"
        if "product manager" in role:
            # Only the new message counts: the history may hold an earlier round's hand-back.
            if "handoff @pm" in self.user.lower():
                return (
                    "Reviewed the engineer's change against the plan: it covers the request, the diff is small "
                    "and the tests pass. Approved — ready to merge."
                )
            return (
                f'Plan for "{task}":\n'
                "1. Pin down the expected behaviour and the edge cases.\n"
                "2. Implement it in small steps, with a test for each.\n"
                "3. Review the diff and the test run before merging.\n\n"
                f"HANDOFF @engineer: {task}"
            )
        if "engineer" in role:
            return self._engineer(out, self._handed_task() or task)
        if role:
            return (
                f'As the {self.role}, my take on "{task}": the request is clear enough to act on. I would '
                "start with the smallest change that shows the idea working, check it with the people who asked, "
                "and only then widen it; the risks are mostly in the edges, so those get written down first."
            )
        return (
            f'Here is how I would approach "{task}": read the code around it first, make the smallest change '
            "that does the job, cover it with a test, and run the suite before calling it done. If anything in "
            "the request is ambiguous, say which reading you picked so it is easy to correct."
        )

    def _handed_task(self) -> str | None:
        found = re.findall(r"^HANDOFF @engineer:\s*(.+)$", self.user, re.IGNORECASE | re.MULTILINE)
        return str(found[-1]).strip() if found else None

    def _engineer(self, out: Emitter, task: str) -> str:
        source, test = _project_files(self.cwd)
        word = next((w for w in re.findall(r"[A-Za-z]{4,}", task)), "TODO")
        steps = [
            ("Read", source, 0.4),
            ("Grep", word, 0.3),
            ("Read", test, 0.5),
            ("Edit", source, 0.6),
            ("Edit", test, 0.4),
            ("Bash", "git diff --stat", 0.3),
        ]
        for name, target, pause in steps:
            out.tool(name, target)
            if self.pace > 0:
                time.sleep(pause * self.pace)
        added = 12 + len(task) % 29
        return (
            f"Done: {task}.\n\n"
            f"- `{source}`: implemented the change.\n"
            f"- `{test}`: added a test that covers it.\n\n"
            f"2 files changed, {added} insertions(+), 3 deletions(-).\n\n"
            "HANDOFF @pm: ready for review"
        )


def _project_files(cwd: str) -> tuple[str, str]:
    """A plausible source file and test file of the project, chosen deterministically."""
    try:
        names = sorted(os.listdir(cwd))
    except OSError:
        names = []
    code = [n for n in names if n.endswith((".py", ".ts", ".js", ".go", ".rs")) and not n.startswith("test")]
    source = code[0] if code else "src/app.py"
    stem = source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return source, f"tests/test_{stem}.py"


def _sleep_with_ticks(out: Emitter, seconds: float) -> None:
    ticks = max(1, round(seconds / 0.2))
    for tick in range(ticks):
        out.tool("Bash", f"sleep {seconds:g}  # step {tick + 1}/{ticks}")
        time.sleep(seconds / ticks)


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


def _read_prompt(options: Options) -> str:
    if options.prompt_args:
        return " ".join(options.prompt_args)
    if sys.stdin is None or sys.stdin.isatty():
        return ""
    return sys.stdin.buffer.read().decode("utf-8", errors="replace")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    entry: dict[str, Any] = {
        "argv": args,
        "cwd": os.getcwd(),
        "prompt": None,
        "env": sorted(os.environ),
        "pid": os.getpid(),
    }
    try:
        options = parse_args(args)
    except UsageError as exc:
        _log(entry)
        sys.stderr.write(f"{exc}\n")
        return 1
    if options.version:
        _log(entry)
        sys.stdout.write(f"{VERSION}\n")
        return 0
    if options.help:
        _log(entry)
        sys.stdout.write("Usage: claude [options] [prompt]\n\n" + (__doc__ or ""))
        return 0
    entry["prompt"] = prompt = _read_prompt(options)
    _log(entry)
    if not prompt.strip():
        sys.stderr.write(
            "Error: Input must be provided either through stdin or as a prompt argument when using --print\n"
        )
        return 1
    try:
        return Turn(options, prompt).run()
    except DirectiveError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    except BrokenPipeError:
        return 141  # the reader went away; the real CLI dies of SIGPIPE the same way


if __name__ == "__main__":
    sys.exit(main())
