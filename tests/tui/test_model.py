"""Threads, per-project counts and the sessions filter, derived from session snapshots."""

from __future__ import annotations

from dataclasses import replace

from mpg_tui.core.api import SessionInfo, ThreadCounts
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.journal import Journal
from mpg_tui.core.ports import InboundMessage
from mpg_tui.tui.model import direct_runs_in_progress, matches, project_counts, summarize_threads


def session(key: str, project: str = "p1", **fields: object) -> SessionInfo:
    thread, _, agent = key.partition(":")
    info = SessionInfo(
        key=key,
        project_key=project,
        thread_id=thread,
        agent=agent or None,
        cwd="/srv/p",
        session_id=None,
        state="idle",
        queue_depth=0,
        last_activity=100.0,
        runner="direct",
    )
    return replace(info, **fields)  # type: ignore[arg-type]


def test_threads_group_sessions_take_the_busiest_state_and_newest_activity() -> None:
    threads = summarize_threads(
        [
            session("1001:pm", last_activity=50.0),
            session("1001:engineer", state="running", last_activity=80.0),
            session("1002", state="queued"),
            session("1003", project="p2"),
        ],
        "p1",
        {"1001": "Add search"},
    )
    assert [t.thread_id for t in threads] == ["1002", "1001"]  # newest thread (largest snowflake) first
    search = threads[1]
    assert (search.name, search.sessions, search.state, search.last_activity) == ("Add search", 2, "running", 80.0)
    assert search.agents == ("engineer", "pm")


def test_threads_of_no_project_are_all_threads() -> None:
    threads = summarize_threads([session("1", project="a"), session("2", project="b")], None, {})
    assert {t.thread_id for t in threads} == {"1", "2"}


def test_thread_order_compares_snowflakes_as_numbers() -> None:
    threads = summarize_threads([session("999"), session("1000")], "p1", {})
    assert [t.thread_id for t in threads] == ["1000", "999"]


def test_project_counts_count_running_sessions_and_waiting_prompts() -> None:
    counts = project_counts(
        [
            session("1", state="running", queue_depth=2),
            session("2", state="queued"),
            session("3"),
            session("4", project="p2", state="running"),
        ]
    )
    assert (counts["p1"].sessions, counts["p1"].running, counts["p1"].queued) == (3, 1, 3)
    assert (counts["p2"].running, counts["p2"].queued) == (1, 0)


def test_filter_needs_every_word_somewhere_in_key_thread_project_agent_or_state() -> None:
    info = session("1001:engineer", state="running")
    assert matches(info, "shop running", project_name="shop-api")
    assert matches(info, "ENGINEER", project_name="shop-api")
    assert matches(info, "")
    assert matches(info, "search 1001", thread_name="Add search")
    assert not matches(info, "shop idle", project_name="shop-api")
    assert not matches(info, "docs", project_name="shop-api")


def test_only_running_direct_runs_die_with_the_cockpit() -> None:
    sessions = [
        session("1", state="running"),
        session("2", state="running", runner="tmux"),
        session("3", state="queued"),
        session("4", state="running"),
    ]
    assert direct_runs_in_progress(sessions) == 2


def test_threads_carry_the_journals_message_counts_and_none_for_unknown_threads() -> None:
    journal = Journal(None, FakeClock())
    for mid, state in (("1001", "answered"), ("1004", "running"), ("1005", "queued")):
        journal.claim(InboundMessage(id=mid, channel_id="1001", author_id="7", author_name="ann", content="x"), "p1")
        journal.mark(mid, state, thread_id="1001")  # type: ignore[arg-type]
    threads = summarize_threads([session("1001"), session("1002")], "p1", {}, journal.counts())
    by_id = {t.thread_id: t.messages for t in threads}
    assert by_id["1001"] == ThreadCounts(waiting=1, running=1, answered=1)
    assert by_id["1002"] == ThreadCounts()
