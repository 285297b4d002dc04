"""The stand-in's entry point: one turn per process, or a live session over stream-json input."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from mpg_tui.sandbox.agent import interactive
from mpg_tui.sandbox.agent.directives import DirectiveError
from mpg_tui.sandbox.agent.options import VERSION, Options, UsageError, parse_args
from mpg_tui.sandbox.agent.turn import Turn, _log


def install_shim(bin_dir: Path) -> Path:
    """Write an executable ``claude`` into ``bin_dir`` that runs this stand-in."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "claude"
    # -P keeps the working directory (a project that may hold a json.py) off sys.path; the
    # package's own root goes on it explicitly, so the shim works from a source tree too.
    python = shlex.quote(sys.executable)
    root = shlex.quote(str(Path(__file__).resolve().parents[3]))
    shim.write_text(
        f'#!/bin/sh\nPYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}} exec {python} -P -m mpg_tui.sandbox.agent "$@"\n',
        encoding="utf-8",
    )
    shim.chmod(0o755)
    return shim


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
    if options.input_format == "stream-json":
        from mpg_tui.sandbox.agent.live import serve  # threads and queues: only for live sessions

        try:
            code = serve(options, entry)
        except BrokenPipeError:
            code = 141
        # The stdin reader thread may still be blocked in a read, which aborts a normal
        # interpreter shutdown (SIGABRT): leave at once, as the real CLI's process does.
        with contextlib.suppress(OSError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    if not options.print:
        _log(entry)
        return interactive.run(options)
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
