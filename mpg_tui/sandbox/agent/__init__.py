"""A stand-in for ``claude --print`` (and a small interactive ``claude --resume``), for tests,
end-to-end runs, benchmarks and the demo.

It is spawned once per turn, or kept alive for many (``--input-format stream-json``, see
:mod:`mpg_tui.sandbox.agent.live`), so it imports only the standard library and starts fast.
:func:`install_shim` writes an executable ``claude`` that runs this file; put its
directory first on ``PATH`` (or use its path as ``RunRequest.command``).

Command line
    The flags of the real CLI: ``-p/--print``, ``--output-format text|json|stream-json``,
    ``--input-format text|stream-json`` (stream-json: a live session, one user message a line),
    ``--verbose``, ``-r/--resume ID``, ``--session-id UUID``, ``--append-system-prompt``,
    ``--system-prompt``, ``--allowed-tools/--allowedTools`` and
    ``--disallowed-tools/--disallowedTools`` (variadic: they take every following word
    that does not start with ``-``, a prompt too), ``--add-dir`` (variadic),
    ``--permission-mode``, ``--model``, ``--max-turns``, ``--max-budget-usd``,
    ``--dangerously-skip-permissions``, ``--version``. As with the real one: an unknown flag is an error (exit 1),
    ``stream-json`` needs ``--verbose``, ``--dangerously-skip-permissions`` is refused for
    root unless ``IS_SANDBOX=1``. The prompt is a trailing argument or standard input.

Sessions
    Kept like the real CLI's under ``$CLAUDE_CONFIG_DIR`` (else ``~/.claude``) in
    ``projects/<cwd with / replaced by ->/<session id>.jsonl``; each turn appends the
    prompt and the reply. ``--resume ID`` of a session not made in this directory fails
    with ``No conversation found with session ID: ID`` on stderr and exit 1; with
    ``stream-json`` also a ``result`` line of subtype ``error_during_execution`` whose
    ``errors`` say the same (as 2.1.330 does), otherwise no output.

Interactive
    Without ``--print`` it is a small terminal session (:mod:`.interactive`): it shows the
    conversation so far (with ``--resume ID``), then takes prompts a line at a time, each
    one a turn appended to the session's transcript; an empty line, ``/exit`` or the end
    of input leaves.

Reply
    ``[<role>] <first line of the user's part>``, where the role comes from a
    ``Your role: X`` line of the system prompt (else ``claude``) and the user's part is
    the prompt after a ``<thread-history>…</thread-history>`` block, if there is one.

Directives
    Written ``[[name]]`` or ``[[name:argument]]`` in the user's part (never read from
    the history block), on one line; text in double brackets with any other name is
    left alone. A directive with a bad argument fails the run (stderr, exit 2).

    ``[[reply:TEXT]]``        reply exactly TEXT (``\\n``, ``\\t``, ``\\[`` and ``\\]`` escapes allowed, so a
                              reply can carry directives for the agent it hands off to)
    ``[[echo]]``              reply with the user's part verbatim
    ``[[echo:full]]``         reply with the whole prompt verbatim (history included)
    ``[[chars:N]]``           reply with exactly N characters, in lines of 80
    ``[[recall]]``            reply with the previous prompt of this session
    ``[[sleep:S]]``           take S more seconds, with a tool_use progress line every 0.2 s
                              (in a live session an interrupt cuts it short)
    ``[[tool:NAME:TARGET]]``  use tool NAME on TARGET (a tool_use + tool_result pair)
    ``[[bash:COMMAND]]``      run COMMAND with Bash, settled as the CLI settles it (see Permissions):
                              it may ask the host first; a denial is its result
    ``[[handoff:AGENT:TASK]]`` end the reply with the line ``HANDOFF @AGENT: TASK``
    ``[[newsession]]``        answer with a new session id, even when resuming
    ``[[cost:USD]]``          the turn costs exactly USD dollars (else a price of its tokens),
                              spread evenly over its model calls (one per tool, one for the reply)
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
    ``hang``      announce the session, then never finish (a live session's interrupt ends it)
    ``stubborn``  like ``hang``, but ignore SIGTERM and interrupts (only SIGKILL ends it)
    ``flood:N``   N MB of junk lines before a normal reply

Spending cap
    With ``--max-budget-usd CAP`` the spend is checked after each model call, as 2.1.330
    does: once it reaches CAP the turn ends there (a tool that call asked for is not run)
    with a result of subtype ``error_max_budget_usd``, ``terminal_reason``
    ``budget_exhausted``, ``errors`` ``["Reached maximum budget ($CAP)"]``, no ``result``
    field, the cost so far in ``total_cost_usd``, and exit 1. The cap covers this process
    only: a resumed session's earlier turns never count against it.
    ``orphan``    start ``sleep 300`` in our process group, left behind when we exit;
                  combines with the others (``[[error:orphan]] [[error:hang]]``)

Permissions
    A tool call is settled as 2.1.330 settles it (:mod:`.permissions`): the allow/deny
    rules and the permission mode first; else, in a live session with
    ``--permission-prompt-tool stdio``, a ``can_use_tool`` control request to the host,
    waited for without a timeout (an interrupt withdraws it); with
    ``--permission-prompt-tool mcp__SERVER__TOOL``, a call of that ``--mcp-config`` server's
    tool (bounded by ``MCP_TOOL_TIMEOUT``); else it is denied with a ``permission_denied``
    line. The denial's message is the tool result the model sees.

Environment
    ``MPG_AGENT_MODE=demo``  persona replies for the demo: a Product Manager plans and
                             hands off to @engineer (approves when the new message
                             has ``HANDOFF @pm``); a Software Engineer shows Read/Grep/Edit/
                             Bash(git) progress and hands back with
                             ``HANDOFF @pm: ready for review``; no role: one helpful
                             paragraph. Deterministic. Directives still win.
                             An engineer whose task mentions tests also runs
                             ``python3 -m pytest -q``, which the default allowlist does
                             not cover: it asks first (see Permissions).
    ``MPG_AGENT_PACE=F``     multiply the demo personas' pauses by F (0 = no pauses).
    ``MPG_AGENT_LOG=FILE``   append one JSON line per invocation: argv, cwd, prompt,
                             sorted environment variable names, pid (and a line with
                             ``orphan_pid`` when one is started).
"""

from __future__ import annotations

from mpg_tui.sandbox.agent.cli import install_shim, main
from mpg_tui.sandbox.agent.directives import filler, parse_directives, user_part
from mpg_tui.sandbox.agent.options import UsageError, parse_args

__all__ = ["UsageError", "filler", "install_shim", "main", "parse_args", "parse_directives", "user_part"]
