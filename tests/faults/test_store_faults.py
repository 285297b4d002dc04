"""``sessions.json`` in trouble: truncated under the gateway, or the disk refusing to write it.

A whole gateway runs in this process, so the tests can make the store's own file
system calls fail (root ignores ``chmod``, so "unwritable" is made by failing ``fsync``
with ``ENOSPC``, as a full disk does).
"""

from __future__ import annotations

import errno
import json
import logging
import os
from typing import Any

import pytest

from mpg_tui import fsutil
from tests.e2e.gateway_process import Profile
from tests.faults.conftest import Channels, StartWorld, World

CHANNELS: Channels = {"work": {}}


def stray_files(profile: Profile) -> list[str]:
    """Temporary files the store may have left beside ``sessions.json``."""
    return sorted(p.name for p in profile.sessions_path.parent.iterdir() if p.name.endswith(".tmp"))


async def saved(world: World) -> dict[str, dict[str, object]]:
    """``sessions.json`` once everything the gateway knows is on disk."""
    assert await world.runtime.store.flush()
    return world.profile.stored_sessions()


async def test_sessions_json_truncated_while_running_is_set_aside_and_rewritten_from_memory(
    start_world: StartWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world = await start_world(CHANNELS)
    first, thread_id = await world.ask("work", "[[reply:noted]] remember the word saffron")
    await world.chat.sent(thread_id, "noted", first.seq)
    path = world.profile.sessions_path
    whole = json.dumps(await saved(world))
    path.write_text(path.read_text(encoding="utf-8")[: len(whole) // 2], encoding="utf-8")

    again = await world.chat.post(thread_id, "[[recall]] which word?")
    await world.chat.sent(thread_id, f"previous: {first.content}", again.seq)

    stored = await saved(world)
    live = world.runtime.gateway.session(thread_id)
    assert live is not None and stored[thread_id]["sessionId"] == live.session_id
    (aside,) = path.parent.glob("sessions.json.corrupt-*")
    assert len(aside.read_text(encoding="utf-8")) < len(whole)  # the damaged file is kept for a human
    assert any("is unreadable" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


async def test_sessions_json_truncated_before_start_is_set_aside_and_the_gateway_serves(
    start_world: StartWorld,
) -> None:
    def truncate(profile: Profile) -> None:
        profile.sessions_path.parent.mkdir(parents=True, exist_ok=True)
        profile.sessions_path.write_text('{\n  "123": {"sessionId": "abc", "cwd": "/nowh', encoding="utf-8")

    world = await start_world(CHANNELS, prepare=truncate)
    await world.still_serves("work", "served despite the damaged file")

    stored = await saved(world)
    assert "123" not in stored and len(stored) == 1
    assert len(list(world.profile.sessions_path.parent.glob("sessions.json.corrupt-*"))) == 1


def _no_space() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FullFile:
    """A file on a full disk: opening works, writing does not."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def __enter__(self) -> _FullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def write(self, _text: str) -> int:
        raise _no_space()

    def __getattr__(self, name: str) -> object:
        return getattr(self._handle, name)


class _DiskFull:
    """The ``os`` module as the store sees it on a full disk: writes and fsyncs fail with ENOSPC."""

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    @staticmethod
    def fdopen(fd: int, *args: Any, **kwargs: Any) -> _FullFile:
        return _FullFile(os.fdopen(fd, *args, **kwargs))

    @staticmethod
    def fsync(fd: int) -> None:
        raise _no_space()


async def test_sessions_json_unwritable_keeps_serving_keeps_the_old_file_and_saves_once_it_can(
    start_world: StartWorld, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mpg_tui.core.store")
    world = await start_world(CHANNELS)
    first, thread_a = await world.ask("work", "[[reply:saved]] a session that reaches the disk")
    await world.chat.sent(thread_a, "saved", first.seq)
    before = await saved(world)
    text_before = world.profile.sessions_path.read_text(encoding="utf-8")

    monkeypatch.setattr(fsutil, "os", _DiskFull())
    second, thread_b = await world.ask("work", "[[reply:answered anyway]] a session the disk refuses")
    await world.chat.sent(thread_b, "answered anyway", second.seq)
    assert not await world.runtime.store.flush()

    # The old file is untouched (the write is atomic) and no temporary file is left over.
    assert world.profile.sessions_path.read_text(encoding="utf-8") == text_before
    assert stray_files(world.profile) == []
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("could not save sessions" in m and "No space left on device" in m for m in failures)

    monkeypatch.undo()  # space again
    third = await world.chat.post(thread_b, "[[recall]] still there?")
    await world.chat.sent(thread_b, f"previous: {second.content}", third.seq)
    after = await saved(world)
    assert set(after) == {*before, thread_b}
    assert any(r.getMessage().startswith("sessions saved to") for r in caplog.records)
