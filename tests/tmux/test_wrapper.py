"""The pane's wrapper on its own: what it records when it cannot run claude."""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from mpg_tui.runners import tmux_wrapper


def prepare(run_dir: Path, **overrides: Any) -> Path:
    run_dir.mkdir(mode=0o700)
    request: dict[str, Any] = {
        "argv": [sys.executable, "-c", "import sys; print(sys.stdin.read().upper())"],
        "cwd": str(run_dir),
        "env": {},
        "timeout_s": 30,
        "grace_s": 1,
        "kill_grace_s": 1,
        "tmux": shutil.which("true") or "true",  # nobody waits on a channel here
        "socket": "unused",
        "channel": "unused",
    }
    request.update(overrides)
    (run_dir / "request.json").write_text(json.dumps(request))
    (run_dir / "prompt.txt").write_text("shout this")
    return run_dir


def run_wrapper(run_dir: Path) -> int:
    """Run the wrapper the way tmux does (its signal handlers must not land in pytest)."""
    return subprocess.run([sys.executable, "-I", tmux_wrapper.__file__, str(run_dir)], check=False).returncode


def read_exit(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "exit.json").read_text())
    return data


def test_the_wrapper_runs_the_command_on_the_prompt_and_records_its_exit(tmp_path: Path) -> None:
    run_dir = prepare(tmp_path / "run")

    assert run_wrapper(run_dir) == 0

    assert (run_dir / "out.ndjson").read_text() == "SHOUT THIS\n"
    assert read_exit(run_dir) == {
        "exit_code": 0,
        "signal": None,
        "timed_out": False,
        "cancelled": False,
        "stopped_by": None,
    }


def test_a_command_that_cannot_start_is_recorded_as_a_spawn_error(tmp_path: Path) -> None:
    run_dir = prepare(tmp_path / "run", argv=[str(tmp_path / "no-such-claude")])

    assert run_wrapper(run_dir) == 0

    outcome = read_exit(run_dir)
    assert outcome["errno"] == errno.ENOENT
    assert outcome["exit_code"] is None


def test_an_unusable_request_is_recorded_where_the_gateway_looks(tmp_path: Path) -> None:
    run_dir = prepare(tmp_path / "run", argv="claude --print")

    assert run_wrapper(run_dir) == 2

    assert "'argv'" in read_exit(run_dir)["wrapper_error"]
    assert not (run_dir / "out.ndjson").exists()
