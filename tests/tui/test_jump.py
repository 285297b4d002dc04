"""The argument lists for jumping into a session and attaching to a tmux run."""

from __future__ import annotations

import pytest

from mpg_tui.core.api import SessionInfo
from mpg_tui.tui.jump import attach_handover, resume_handover, session_workdir


def info(**fields: object) -> SessionInfo:
    base: dict[str, object] = {
        "key": "1200000000000000101:engineer",
        "project_key": "1",
        "thread_id": "1200000000000000101",
        "agent": "engineer",
        "cwd": "/srv/shop",
        "session_id": "3f2a1b9c-0000",
        "state": "idle",
        "queue_depth": 0,
        "last_activity": 0.0,
        "runner": "direct",
    }
    base.update(fields)
    return SessionInfo(**base)  # type: ignore[arg-type]


def test_resume_outside_tmux_runs_claude_in_the_foreground_in_the_session_cwd() -> None:
    handover = resume_handover(info(), {})
    assert handover.argv == ["claude", "--resume", "3f2a1b9c-0000"]
    assert handover.cwd == "/srv/shop"
    assert handover.foreground


def test_resume_inside_tmux_opens_a_window_in_the_worktree() -> None:
    handover = resume_handover(info(worktree_path="/srv/shop/.worktrees/x"), {"TMUX": "/tmp/tmux-0/default,1,0"})
    assert handover.argv == [
        "tmux", "new-window", "-c", "/srv/shop/.worktrees/x", "-n", "engineer-000101",
        "--", "claude", "--resume", "3f2a1b9c-0000",
    ]  # fmt: skip
    assert handover.cwd is None
    assert not handover.foreground


def test_an_empty_tmux_variable_is_not_tmux() -> None:
    assert resume_handover(info(), {"TMUX": ""}).foreground


def test_the_claude_command_can_be_replaced() -> None:
    handover = resume_handover(info(), {}, claude=("npx", "claude"))
    assert handover.argv[:3] == ["npx", "claude", "--resume"]


def test_resume_without_a_session_id_is_refused() -> None:
    with pytest.raises(ValueError, match="no claude session ID"):
        resume_handover(info(session_id=None), {})


def test_workdir_prefers_the_worktree() -> None:
    assert session_workdir(info()) == "/srv/shop"
    assert session_workdir(info(worktree_path="/w")) == "/w"


def tmux_info(name: str, socket: str) -> SessionInfo:
    return info(runner="tmux", tmux_session=name, attach_command=["tmux", "-L", socket, "attach", "-t", name])


def test_attach_outside_tmux_runs_the_gateways_attach_command_in_the_foreground() -> None:
    handover = attach_handover(tmux_info("mpg-101-engineer", "mpg-tui"), {})
    assert handover.argv == ["tmux", "-L", "mpg-tui", "attach", "-t", "mpg-101-engineer"]
    assert handover.foreground


def test_attach_inside_tmux_opens_a_window_running_the_attach() -> None:
    handover = attach_handover(tmux_info("mpg-101", "sock"), {"TMUX": "x"})
    assert handover.argv[:2] == ["tmux", "new-window"]
    assert handover.argv[-7:] == ["--", "tmux", "-L", "sock", "attach", "-t", "mpg-101"]
    assert not handover.foreground


def test_attach_to_a_direct_run_is_refused() -> None:
    with pytest.raises(ValueError, match="not running in tmux"):
        attach_handover(info(), {})
