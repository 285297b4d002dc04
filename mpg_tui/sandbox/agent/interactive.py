"""The stand-in's interactive mode: what ``claude --resume ID`` in a terminal does, in small.

It shows the conversation so far from the session's transcript, then reads prompts a line
at a time after ``> ``. Each prompt is one turn, answered as ``--print`` would answer it
and appended to the transcript the way the real CLI appends, so a gateway taking the
session back can count the turns. An empty line, ``/exit`` or the end of input leaves.
A ``[[newsession]]`` prompt carries the conversation on under a new session ID.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import uuid
from typing import Any

from mpg_tui.sandbox.agent.directives import DirectiveError, first_line, user_part
from mpg_tui.sandbox.agent.options import Options
from mpg_tui.sandbox.agent.sessions import read_records, session_file
from mpg_tui.sandbox.agent.turn import Turn

SHOWN_CHARS = 160
LEAVE = {"", "/exit", "/quit", "exit"}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _shown(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= SHOWN_CHARS else line[: SHOWN_CHARS - 1] + "…"


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def run(options: Options) -> int:
    cwd = os.getcwd()
    session_id = options.resume or options.session_id or str(uuid.uuid4())
    if options.resume:
        path = session_file(cwd, options.resume)
        if not path.is_file():
            sys.stderr.write(f"No conversation found with session ID: {options.resume}\n")
            return 1
        _write(f"✻ Claude Code (stand-in) · resuming {session_id[:8]} in {cwd}\n\n")
        for record in read_records(path):
            kind = record.get("type")
            text = _text((record.get("message") or {}).get("content"))
            if kind == "user" and text.strip():
                _write(f"> {_shown(first_line(user_part(text)) or text)}\n")
            elif kind == "assistant" and text.strip():
                _write(f"⏺ {_shown(text)}\n\n")
    else:
        _write(f"✻ Claude Code (stand-in) · new session {session_id[:8]} in {cwd}\n\n")
    _write("Type a message; an empty line or /exit leaves.\n")
    turns = 0
    while True:
        _write("> ")
        line = sys.stdin.readline()
        if not line or line.strip() in LEAVE:
            break
        turn_options = dataclasses.replace(options, print=True, output_format="text", prompt_args=[])
        if turns or options.resume:
            turn_options.resume, turn_options.session_id = session_id, None
        else:
            turn_options.session_id = session_id
        turn = Turn(turn_options, line.strip())
        _write("⏺ ")
        try:
            status = turn.run()
        except DirectiveError as exc:
            sys.stderr.write(f"{exc}\n")
            continue
        if status != 0:
            return status
        session_id = turn.session_id or session_id
        turns += 1
        _write("\n")
    _write(f"Resume this session with: claude --resume {session_id}\n")
    return 0
