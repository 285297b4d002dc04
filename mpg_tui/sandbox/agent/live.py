"""The stand-in's live mode: ``--input-format stream-json``, one process for many turns.

It speaks what Claude Code 2.1.330 speaks on its pipes in that mode:

* nothing is printed before the first user message; each
  ``{"type":"user","message":{"role":"user","content":...}}`` line on stdin is one turn,
  printed as ``system/init``, its progress lines and one ``result`` line;
* a message written while a turn runs waits for it (queued, never interleaved);
* ``{"type":"control_request","request_id":ID,"request":{"subtype":"interrupt"}}`` is
  answered with a ``control_response`` at once; a running turn then ends with an
  ``error_during_execution`` result (``terminal_reason`` ``aborted_streaming``, or
  ``aborted_tools`` while a tool works) and the process waits for the next message;
  ``initialize`` is answered too, and any other request gets an error response;
* the end of stdin lets the running turn finish, then the process exits: status 1 when
  its last result was an error, else 0;
* results carry the process's cumulative ``total_cost_usd`` and the turn's own
  ``model_usage_since_last_result``.

A reader thread owns stdin, so control requests are answered while a turn works.
The other direction, the stand-in asking the host (``can_use_tool`` with
``--permission-prompt-tool stdio``), is :mod:`mpg_tui.sandbox.agent.permissions`; an
interrupt withdraws a pending request (``control_cancel_request``) before it is answered.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from typing import Any

from mpg_tui.sandbox.agent.directives import DirectiveError
from mpg_tui.sandbox.agent.options import VERSION, Options
from mpg_tui.sandbox.agent.output import share_stdout, write_line
from mpg_tui.sandbox.agent.permissions import ControlRequests
from mpg_tui.sandbox.agent.turn import LiveState, Turn, _log


def serve(options: Options, entry: dict[str, Any]) -> int:
    """Run turns from stdin until it ends; the process's exit status."""
    share_stdout(threading.Lock())
    inbox: queue.Queue[str | None] = queue.Queue()
    requests = ControlRequests()
    state = LiveState(stop=threading.Event(), requests=requests)
    busy = threading.Event()
    reader = threading.Thread(target=_read_stdin, args=(inbox, state, busy, requests), daemon=True)
    reader.start()
    status = 0
    while True:
        prompt = inbox.get()
        if prompt is None:
            return status
        _log({**entry, "prompt": prompt, "live": True})
        try:
            turn = Turn(options, prompt, live=state)
        except DirectiveError as exc:
            sys.stderr.write(f"{exc}\n")
            return 2
        state.stop.clear()
        busy.set()
        try:
            code = turn.run()
        finally:
            busy.clear()
        if state.session_id is None or not turn.printed_result:
            return code  # refused to resume, or died mid-turn: the process ends, as the real one would
        status = 1 if code else 0


def _read_stdin(
    inbox: queue.Queue[str | None], state: LiveState, busy: threading.Event, requests: ControlRequests
) -> None:
    try:
        for raw in sys.stdin.buffer:
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            try:
                message = json.loads(line)
            except ValueError:
                sys.stderr.write(f"Error parsing streaming input line: {line[:200]}\n")
                continue
            if not isinstance(message, dict):
                continue
            kind = message.get("type")
            if kind == "user":
                inbox.put(_user_text(message.get("message")))
            elif kind == "control_request":
                _answer(message, state, busy, requests)
            elif kind == "control_response" and isinstance(message.get("response"), dict):
                requests.resolve(message["response"])
    finally:
        requests.close()
        inbox.put(None)


def _user_text(message: object) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(block.get("text", "")) for block in content if isinstance(block, dict) and block.get("type") == "text"
        )
    return ""


def _answer(message: dict[str, Any], state: LiveState, busy: threading.Event, requests: ControlRequests) -> None:
    request_id = message.get("request_id")
    request = message.get("request")
    subtype = request.get("subtype") if isinstance(request, dict) else None
    if subtype == "interrupt":
        wake_askers = requests.withdraw_all()  # a pending permission request is withdrawn first
        write_line(_success(request_id, {"still_queued": []}))
        if busy.is_set():
            state.stop.set()  # after the response: the host sees it before the turn's result
        wake_askers()
    elif subtype == "initialize":
        body = {"commands": [], "pid": os.getpid(), "claude_code_version": VERSION.split()[0], "session_state": "idle"}
        write_line(_success(request_id, body))
    else:
        error = f"Unsupported control request subtype: {subtype}"
        write_line(
            {"type": "control_response", "response": {"subtype": "error", "request_id": request_id, "error": error}}
        )


def _success(request_id: object, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": "control_response", "response": {"subtype": "success", "request_id": request_id, "response": body}}
