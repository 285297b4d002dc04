"""What a batch of core events asks the cockpit to redraw, and how each event is logged."""

from __future__ import annotations

import pytest

from mpg_tui.core.events import (
    ConnectionChanged,
    Event,
    HandoffStep,
    HandoffStopped,
    LogLine,
    MessageRejected,
    ReplySent,
    RunFinished,
    RunProgress,
    RunStarted,
    SessionIdled,
    SessionKilled,
    ThreadOpened,
)
from mpg_tui.tui.digest import describe, digest, normalize_level

NAMES = {"1": "shop-api"}


def started(key: str = "10:pm") -> RunStarted:
    return RunStarted(
        key=key, project_key="1", thread_id="10", agent="pm", runner="direct", cwd="/p", session_id=None,
        prompt_preview="hi", at=0.0,
    )  # fmt: skip


def finished(ok: bool = True, error: str | None = None) -> RunFinished:
    return RunFinished(
        key="10:pm", project_key="1", thread_id="10", agent="pm", ok=ok, session_id="abcdef123456",
        reply_preview="", error=error, cost_usd=0.05, input_tokens=1000, output_tokens=500, duration_ms=12_300, at=0.0,
    )  # fmt: skip


def test_a_burst_for_one_session_is_one_session_to_reread() -> None:
    events: list[Event] = [started(), *[RunProgress(key="10:pm", step="text", text=f"{i}") for i in range(50)]]
    batch = digest(events, NAMES)
    assert batch.session_keys == {"10:pm"}
    assert batch.threads == {"10"}
    assert not batch.totals
    assert len(batch.log) == 1  # progress is shown in the detail pane, not logged


def test_finished_runs_refresh_totals_and_kills_name_the_session() -> None:
    batch = digest([finished(), SessionKilled(key="11", project_key="1")], NAMES)
    assert batch.totals
    assert batch.session_keys == {"10:pm", "11"}


def test_thread_names_and_the_latest_connection_state_are_kept() -> None:
    batch = digest(
        [
            ThreadOpened(project_key="1", channel_id="1", thread_id="10", name="Add search"),
            ConnectionChanged(state="resuming"),
            ConnectionChanged(state="ready", detail="resumed"),
        ],
        NAMES,
    )
    assert batch.thread_names == {"10": "Add search"}
    assert batch.connection == ("ready", "resumed")


def test_an_empty_batch_is_empty() -> None:
    assert digest([], NAMES).empty
    assert not digest([ConnectionChanged(state="ready")], NAMES).empty


@pytest.mark.parametrize(
    ("event", "level", "words"),
    [
        (started(), "info", "10:pm started (direct, new session)"),
        (finished(), "info", "10:pm finished in 12.3s · $0.050 · 1.5k tokens"),
        (finished(ok=False, error="API Error: 529"), "error", "10:pm failed: API Error: 529"),
        (MessageRejected(project_key="1", channel_id="1", author="eve", reason="missing role"), "warn", "eve"),
        (HandoffStep(project_key="1", thread_id="10", from_agent=None, to_agent="pm", turn=1, max_turns=5), "info",
         "handoff you → pm (turn 1/5)"),
        (HandoffStopped(project_key="1", thread_id="10", reason="turn_limit", turns=5), "warn", "turn limit after 5"),
        (HandoffStopped(project_key="1", thread_id="10", reason="error", turns=1), "error", "after 1 turn"),
        (SessionIdled(key="10", project_key="1"), "debug", "idle"),
        (ReplySent(channel_id="10", chunks=2, agent="pm"), "debug", "2 messages"),
        (ConnectionChanged(state="disconnected", detail="4004"), "error", "Discord disconnected: 4004"),
        (LogLine(level="WARNING", logger="mpg", message="slow"), "warn", "mpg: slow"),
    ],
)  # fmt: skip
def test_each_event_is_worded_at_its_level(event: Event, level: str, words: str) -> None:
    entry = describe(event, NAMES)
    assert entry is not None
    assert entry.level == level
    assert words in entry.text


def test_log_entries_name_the_project_by_its_name() -> None:
    entry = describe(started(), NAMES)
    assert entry is not None and entry.project == "shop-api"
    assert describe(ConnectionChanged(state="ready"), NAMES).project is None  # type: ignore[union-attr]


def test_progress_is_not_logged() -> None:
    assert describe(RunProgress(key="1", step="tool", text="x", tool="Read"), NAMES) is None


@pytest.mark.parametrize(
    ("raw", "level"), [("DEBUG", "debug"), ("warning", "warn"), ("CRITICAL", "error"), ("x", "info")]
)
def test_log_levels_from_python_logging_are_normalised(raw: str, level: str) -> None:
    assert normalize_level(raw) == level
