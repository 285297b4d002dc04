"""The gateway process itself in trouble: killed, stopped mid-queue, its config edited under it.

Real ``mpg-tui --no-ui`` processes (:mod:`tests.e2e.gateway_process`) on one sandbox shared
by the module; each test has a profile and channels of its own. (A tmux-backed run
surviving SIGKILL is proven in ``tests/e2e/test_tmux_recovery.py``.)
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from mpg_tui.core.gateway import LOST_RUN_TEXT
from mpg_tui.core.turn_runner import SHUTDOWN_ERROR
from mpg_tui.sandbox.discord import SandboxServer
from tests.e2e.gateway_process import WAIT_S, Chat, Posted, Profile, open_thread, process_alive, running_gateway
from tests.faults.conftest import ERROR_PREFIX, profile_for, sandbox_spec

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

CHANNELS: dict[str, dict[str, Any]] = {"sigkill": {}, "sigterm": {}, "reload": {}, "others": {}}
UNMAPPED = ("added-later",)
QUEUED = 50


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[SandboxServer]:
    async with SandboxServer(sandbox_spec(CHANNELS, UNMAPPED)) as server:
        yield server


@pytest.fixture
def chat(sandbox: SandboxServer) -> Chat:
    return Chat(sandbox)


def profile_of(sandbox: SandboxServer, root: Path, *channels: str, **defaults: Any) -> Profile:
    return profile_for(sandbox, root, {name: CHANNELS[name] for name in channels}, defaults)


async def test_sigkill_mid_run_ends_the_orphaned_run_and_tells_the_thread_on_restart_that_it_was_lost(
    sandbox: SandboxServer, chat: Chat, tmp_path: Path
) -> None:
    profile = profile_of(sandbox, tmp_path, "sigkill")
    async with running_gateway(profile) as gateway:
        # Claude starts a background child in its process group (a dev server, say). Once the
        # gateway is gone claude itself dies writing to its closed pipe; the child works on.
        posted = await chat.post(chat.channel("sigkill"), "[[error:orphan]] [[sleep:30]] work then die")
        thread_id = await chat.thread_for(posted)
        await chat.sent_starting(thread_id, "⚙️ Claude is working", posted.seq)
        gateway.process.send_signal(signal.SIGKILL)
        assert await gateway.wait_exit() == -signal.SIGKILL
    (run,) = profile.agent_log.asked("work then die")
    (child,) = orphan_pids(profile)
    try:
        # What the killed gateway left: the marker of a run in progress, and what the run started.
        assert profile.stored_sessions()[thread_id]["pendingRun"]["runner"] == "direct"
        assert process_alive(child)

        restarted = sandbox.last_seq
        async with running_gateway(profile) as next_life:
            await chat.sent(thread_id, LOST_RUN_TEXT, restarted)
            # Ended before the gateway connected, so before the thread was told.
            assert not process_alive(run.pid) and not process_alive(child)
            # Told once, and the thread works again.
            again = await chat.post(thread_id, "[[reply:working again]] try again")
            await chat.sent(thread_id, "working again", again.seq)
            assert await next_life.terminate() == 0
        assert [a.text for a in chat.actions_in(thread_id)].count(LOST_RUN_TEXT) == 1
        assert "pendingRun" not in profile.stored_sessions()[thread_id]
        assert f"ended claude left running by the previous gateway for {thread_id}" in next_life.stderr.text
    finally:
        if process_alive(run.pid) or process_alive(child):  # the sweep failed: leave nothing running
            os.killpg(run.pid, signal.SIGKILL)


def orphan_pids(profile: Profile) -> list[int]:
    """The background children the stand-in claude started (its ``orphan_pid`` notes)."""
    lines = profile.agent_log.path.read_text(encoding="utf-8").splitlines()
    return [entry["orphan_pid"] for entry in map(json.loads, lines) if "orphan_pid" in entry]


def outcome_in(chat: Chat, posted: Posted, thread_id: str, reply: str) -> str:
    """``"answered"`` or ``"told"`` (the shutdown error) for one message; anything else is a failure."""
    texts = [a.text for a in chat.actions_in(thread_id, posted.seq) if a.kind == "message_sent"]
    if texts.count(reply) == 1 and not any(t.startswith(ERROR_PREFIX) for t in texts):
        return "answered"
    if texts.count(f"{ERROR_PREFIX}{SHUTDOWN_ERROR}") == 1 and reply not in texts:
        return "told"
    return f"neither: {texts}"


async def test_sigterm_during_a_queue_of_50_messages_answers_or_tells_every_one(
    sandbox: SandboxServer, chat: Chat, tmp_path: Path
) -> None:
    profile = profile_of(sandbox, tmp_path, "sigterm", maxConcurrentSessions=2)
    channel = chat.channel("sigterm")
    async with running_gateway(profile) as gateway:
        posts = [await chat.post(channel, f"[[sleep:2]] [[reply:answer {n}]] job {n}") for n in range(QUEUED)]
        threads = [await chat.thread_for(posted) for posted in posts]
        # Two run at a time (100 s of work in all); once the last message waits in line, stop.
        await chat.sent_starting(threads[-1], "⏳ queued #", posts[-1].seq)
        assert await gateway.terminate() == 0
        assert "Traceback" not in gateway.stderr.text

    outcomes = [outcome_in(chat, p, t, f"answer {n}") for n, (p, t) in enumerate(zip(posts, threads, strict=True))]
    assert all(outcome in ("answered", "told") for outcome in outcomes), outcomes
    assert outcomes.count("told") >= QUEUED - 4  # most never got their turn
    # No live status line was left behind in any thread.
    ours = [a for a in sandbox.actions if a.channel_id in set(threads)]
    statuses = {a.message_id for a in ours if a.kind == "message_sent" and a.text.startswith("⚙️")}
    assert statuses and statuses <= {a.message_id for a in ours if a.kind == "message_deleted"}
    # The store was written whole: valid JSON, no temporary file left beside it.
    stored = profile.stored_sessions()
    assert all(entry["cwd"] == str(profile.projects["sigterm"]) for entry in stored.values())
    assert sorted(p.name for p in profile.sessions_path.parent.iterdir() if p.name.startswith(".")) == []


def save_config(profile: Profile, config: dict[str, Any]) -> None:
    """Replace config.json in one step, as editors save, so a poll never sees it half-written."""
    temp = profile.config_path.with_suffix(".tmp")
    temp.write_text(json.dumps(config), encoding="utf-8")
    os.replace(temp, profile.config_path)


async def test_config_edited_to_invalid_while_running_keeps_the_old_config_and_a_valid_edit_applies(
    sandbox: SandboxServer, chat: Chat, tmp_path: Path
) -> None:
    profile = profile_of(sandbox, tmp_path, "reload")
    good = json.loads(profile.config_path.read_text(encoding="utf-8"))
    async with running_gateway(profile) as gateway:
        # Invalid: noticed by the file watch, refused with the ConfigError's words.
        save_config(profile, {**good, "defaults": {**good["defaults"], "maxConcurrentSessions": "four"}})
        await gateway.stderr.wait_for("Config not reloaded", WAIT_S)
        refused = next(line for line in gateway.stderr.lines if "Config not reloaded" in line)
        assert f"{profile.config_path}: defaults.maxConcurrentSessions: expected a valid integer" in refused
        await open_thread(chat, chat.channel("reload"), "old config still serves", "after the bad edit")

        # Valid: a new channel mapped, applied to the next messages.
        later = chat.channel("added-later")
        directory = profile.root / "projects" / "added-later"
        directory.mkdir()
        good["projects"][later] = {"name": "added-later", "directory": str(directory)}
        save_config(profile, good)
        await gateway.stderr.wait_for("Config reloaded", WAIT_S)
        await open_thread(chat, later, "new channel served", "after the good edit")
        await open_thread(chat, chat.channel("reload"), "old channel too", "still mapped")

        # SIGHUP reloads at once, edited or not.
        gateway.process.send_signal(signal.SIGHUP)
        await gateway.stderr.wait_for_count("Config reloaded", 2, WAIT_S)
        assert await gateway.terminate() == 0
    assert gateway.stderr.count("Config not reloaded") == 1
