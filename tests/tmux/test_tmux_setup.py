"""What the tmux runner needs from the host: a recent tmux, and tmux's wait-for memory."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from mpg_tui.core.clock import FakeClock
from mpg_tui.runners.tmux import TmuxRunner, TmuxUnavailable, ensure_tmux
from tests.tmux.conftest import WAIT_S, tmux

MISSING = 'tmux persistence is configured but tmux was not found on PATH; install tmux or remove "persistence": "tmux"'


def test_missing_tmux_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(TmuxUnavailable) as raised:
        ensure_tmux()
    assert str(raised.value) == MISSING
    with pytest.raises(TmuxUnavailable):
        TmuxRunner("mpg-test-unused", tmp_path / "runs", clock=FakeClock())


def fake_tmux(bin_dir: Path, version: str) -> None:
    bin_dir.mkdir()
    script = bin_dir / "tmux"
    script.write_text(f"#!/bin/sh\necho 'tmux {version}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_tmux_older_than_3_0_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tmux(tmp_path / "bin", "2.9a")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))

    with pytest.raises(TmuxUnavailable, match=r"tmux 2\.9a is too old .*3\.0 or newer"):
        ensure_tmux()


@pytest.mark.parametrize("version", ["3.0", "3.3a", "next-3.6", "master"])
def test_recent_and_development_tmux_builds_are_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    fake_tmux(tmp_path / "bin", version)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))

    assert ensure_tmux() == str(tmp_path / "bin" / "tmux")


def test_the_installed_tmux_is_usable() -> None:
    assert os.path.basename(ensure_tmux()) == "tmux"


async def test_a_wait_for_signal_sent_before_the_wait_still_wakes_the_waiter(tmux_socket: str) -> None:
    # A session keeps the server up, so the waiter can only return by being signalled.
    assert tmux(tmux_socket, "-f", os.devnull, "new-session", "-d", "-s", "holder", "sleep", "60").returncode == 0
    assert tmux(tmux_socket, "wait-for", "-S", "mpg-done-early").returncode == 0

    waiter = await asyncio.create_subprocess_exec("tmux", "-L", tmux_socket, "wait-for", "mpg-done-early")
    assert await asyncio.wait_for(waiter.wait(), WAIT_S) == 0
    assert tmux(tmux_socket, "has-session", "-t", "=holder").returncode == 0


def test_an_invalid_socket_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="socket"):
        TmuxRunner("a/b", tmp_path, clock=FakeClock())
