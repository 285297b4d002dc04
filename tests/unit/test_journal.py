"""The inbound journal: claims once per message ID, states that end, cursors, a corrupt file set aside."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from mpg_tui.core import journal as journal_module
from mpg_tui.core.api import ThreadCounts
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.journal import CHECKPOINT_EVERY, Journal
from mpg_tui.core.ports import Attachment, InboundMessage

CHANNEL = "100"


def message(mid: str, channel: str = CHANNEL, parent: str | None = None, content: str = "hello") -> InboundMessage:
    return InboundMessage(
        id=mid,
        channel_id=channel,
        parent_channel_id=parent,
        author_id="7",
        author_name="ann",
        content=content,
        role_ids=("1",),
        attachments=(Attachment("http://x/a.txt", "a.txt", 3, "text/plain"),),
    )


def test_a_message_is_claimed_once_and_read_back_whole(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3", FakeClock())
    msg = message("1001")
    assert journal.claim(msg, "p") is True
    assert journal.claim(msg, "p") is False
    entry = journal.entry("1001")
    assert entry is not None and entry.state == "received" and entry.message == msg


async def test_on_the_loop_a_claim_is_decided_at_once_and_its_row_written_a_moment_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, clock = tmp_path / "journal.sqlite3", FakeClock()
    journal, reader = Journal(path, clock), Journal(path, clock)
    monkeypatch.setattr(journal_module, "CLAIM_WRITE_AFTER_S", 3600)
    assert journal.claim(message("1001"), "p") is True
    assert journal.claim(message("1001"), "p") is False  # decided, though not written yet
    assert reader.entry("1001") is None
    assert journal.cursor(CHANNEL) == "1001"  # any read or write of the journal writes it first
    assert (entry := reader.entry("1001")) is not None and entry.state == "received"

    monkeypatch.setattr(journal_module, "CLAIM_WRITE_AFTER_S", 0)
    assert journal.claim(message("1002"), "p") is True
    for _ in range(100):  # with nothing else to write it, the timer does: passes of the loop, no time
        if reader.entry("1002") is not None:
            break
        await asyncio.sleep(0)
    assert reader.entry("1002") is not None


def test_states_move_on_and_a_final_state_is_never_left(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3", FakeClock())
    journal.claim(message("1001"), "p")
    journal.mark("1001", "queued", thread_id="1001", session_key="1001")
    journal.mark("1001", "running")
    journal.mark("1001", "answered")
    journal.mark("1001", "running")
    entry = journal.entry("1001")
    assert entry is not None and (entry.state, entry.thread_id, entry.session_key) == ("answered", "1001", "1001")
    assert journal.unfinished() == []


def test_unfinished_messages_survive_a_reopen_in_the_order_received(tmp_path: Path) -> None:
    path, clock = tmp_path / "journal.sqlite3", FakeClock()
    journal = Journal(path, clock)
    for mid in ("1003", "1001", "1002"):
        journal.claim(message(mid), "p")
        clock.advance(1)
    journal.mark("1001", "answered")
    journal.close()
    again = Journal(path, clock)
    assert [e.message_id for e in again.unfinished()] == ["1003", "1002"]


def test_the_cursor_only_moves_forward_and_counts_are_per_thread(tmp_path: Path) -> None:
    journal = Journal(None, FakeClock())
    journal.claim(message("1005"), "p")
    journal.saw(CHANNEL, "1003")
    journal.saw(CHANNEL, "999")  # shorter: older, though it sorts after "1005" as text
    assert journal.cursor(CHANNEL) == "1005"
    journal.saw(CHANNEL, "10000")
    assert journal.cursor(CHANNEL) == "10000"
    journal.saw(CHANNEL, "1005")
    assert journal.cursor(CHANNEL) == "10000"
    journal.claim(message("2001", channel="1005", parent=CHANNEL), "p")
    journal.mark("1005", "answered", thread_id="1005")
    journal.mark("2001", "running")
    assert journal.counts() == {"1005": ThreadCounts(running=1, answered=1)}
    assert [c.channel_id for c in journal.threads(since=0, limit=10)] == ["1005"]


def test_counts_kept_in_step_with_writes_match_the_database_after_every_write(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    clock = FakeClock(start=1_700_000_000.0)
    journal = Journal(path, clock)
    journal.claim(message("1001"), "p")
    assert journal.counts() == {CHANNEL: ThreadCounts(waiting=1)}  # read once; kept up to date from here

    def step(write: Callable[[], object]) -> None:
        write()
        assert journal.counts() == Journal(path, clock).counts()

    step(lambda: journal.mark("1001", "received", thread_id="1001"))  # moves from the channel to its thread
    step(lambda: journal.claim(message("1002", channel="1001", parent=CHANNEL), "p"))
    step(lambda: journal.claim(message("1002", channel="1001", parent=CHANNEL), "p"))  # not twice
    step(lambda: journal.mark("1001", "queued", session_key="1001"))
    step(lambda: journal.mark("1001", "running"))
    step(lambda: journal.mark("1002", "queued", session_key="1001"))
    step(lambda: journal.mark("1001", "answered"))
    step(lambda: journal.mark("1001", "running"))  # a final state is never left
    step(lambda: journal.mark("9999", "told"))  # unknown: nothing to count
    step(lambda: journal.claim(message("1003"), "p"))
    step(lambda: journal.claim(message("1004", channel="1001", parent=CHANNEL), "p", thread_id="1001"))
    step(lambda: journal.mark("1004", "answered"))
    step(lambda: journal.mark("1003", "told"))
    step(lambda: journal.mark("1002", "running"))
    step(lambda: journal.mark_running_of("1001", "told"))
    clock.advance(8 * 24 * 3600)
    step(journal.prune)
    assert journal.counts() == {}


def test_a_corrupt_journal_is_moved_aside_and_a_fresh_one_works(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    journal = Journal(path, FakeClock(start=1_700_000_000.0))
    assert (tmp_path / "journal.sqlite3.corrupt-1700000000000").read_bytes().startswith(b"this is not")
    assert journal.claim(message("1001"), "p") is True


def test_a_journal_that_cannot_be_written_lets_messages_through(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3", FakeClock())
    journal.close()  # every statement now fails, as on a broken disk
    assert journal.claim(message("1001"), "p") is True
    journal.mark("1001", "answered")
    assert journal.counts() == {}


def test_checkpoints_run_on_a_thread_of_their_own_and_close_leaves_no_wal(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path, FakeClock())
    assert journal._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # never on a write of the loop
    assert journal.checkpointer is not None

    for n in range(CHECKPOINT_EVERY):
        journal.claim(message(str(2000 + n)), "p")
    with journal.checkpointer.ran:
        assert journal.checkpointer.ran.wait_for(
            lambda: journal.checkpointer is not None and journal.checkpointer.done, timeout=60
        )
    journal.close()

    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    reopened = Journal(path, FakeClock())
    assert len(reopened.recent(1000)) == CHECKPOINT_EVERY
    reopened.close()
