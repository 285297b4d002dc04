import json
import logging
import os
from pathlib import Path

import pytest

from mpg_tui.core.clock import FakeClock
from mpg_tui.core.sessions_file import PendingRun, StoredSession, parse_document
from mpg_tui.core.store import SessionStore
from mpg_tui.fsutil import atomic_write

DAY_MS = 86_400_000


def entry(key: str, clock: FakeClock, *, age_ms: int = 0, **fields: object) -> StoredSession:
    base: dict[str, object] = {
        "session_id": f"sid-{key}",
        "cwd": f"/projects/{key}",
        "last_activity_ms": int(clock.now() * 1000) - age_ms,
    }
    base.update(fields)
    return StoredSession(key=key, **base)  # type: ignore[arg-type]


def read_json(path: Path) -> dict[str, dict[str, object]]:
    """The saved entries by session key; the file must be MPG's array form."""
    data = json.loads(path.read_text())
    assert isinstance(data, list)
    return {item["projectKey"]: item for item in data}


def load_as_mpg(text: str) -> dict[str, dict[str, object]]:
    """What MPG v0.6.0's store loads from ``text``: an array keyed by ``projectKey``, entries
    without ``sessionId`` or ``projectKey`` skipped, unknown fields ignored."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise TypeError("MPG iterates sessions.json as an array")
    loaded: dict[str, dict[str, object]] = {}
    for item in data:
        if not item.get("sessionId") or not item.get("projectKey"):
            continue
        loaded[item["projectKey"]] = {
            name: item[name]
            for name in ("sessionId", "projectKey", "cwd", "lastActivity", "worktreePath", "projectDir")
            if name in item
        }
    return loaded


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "profile" / "sessions.json"


def make_store(path: Path, clock: FakeClock, **kwargs: int) -> SessionStore:
    store = SessionStore(path, clock=clock, **kwargs)  # type: ignore[arg-type]
    store.load()
    return store


async def test_saved_file_has_mpg_fields_and_ours(path: Path, clock: FakeClock) -> None:
    store = make_store(path, clock)
    store.put(
        entry(
            "111:pm",
            clock,
            channel_id="999",
            thread_id="111",
            agent="pm",
            worktree_path="/projects/x/.worktrees/111-pm",
            project_dir="/projects/x",
            cost_usd=0.5,
            input_tokens=3,
            output_tokens=4,
            runs=2,
        )
    )
    assert await store.flush()
    saved = read_json(path)["111:pm"]
    assert saved["sessionId"] == "sid-111:pm"
    assert saved["projectKey"] == "111:pm"  # MPG's meaning: the session key
    assert saved["cwd"] == "/projects/111:pm"
    assert saved["lastActivity"] == int(clock.now() * 1000)
    assert saved["worktreePath"] == "/projects/x/.worktrees/111-pm"
    assert saved["projectDir"] == "/projects/x"
    assert (saved["channelId"], saved["threadId"], saved["agent"], saved["runs"]) == ("999", "111", "pm", 2)


def test_reads_mpg_object_file_unchanged_and_keeps_unknown_fields(path: Path, clock: FakeClock) -> None:
    path.parent.mkdir(parents=True)
    now = int(clock.now() * 1000)
    path.write_text(
        json.dumps(
            {
                "123": {"sessionId": "a", "projectKey": "123", "cwd": "/p", "lastActivity": now},
                "456:qa": {
                    "sessionId": "b",
                    "projectKey": "456:qa",
                    "cwd": "/p/.worktrees/456-qa",
                    "lastActivity": now,
                    "worktreePath": "/p/.worktrees/456-qa",
                    "projectDir": "/p",
                    "futureField": [1, 2],
                },
            }
        )
    )
    store = SessionStore(path, clock=clock)
    loaded = {e.key: e for e in store.load()}
    assert loaded["123"].session_id == "a"
    assert loaded["456:qa"].worktree_path == "/p/.worktrees/456-qa"
    store.put(entry("789", clock))
    assert store.save_now()
    assert read_json(path)["456:qa"]["futureField"] == [1, 2]


def test_reads_the_array_form_mpg_code_writes(path: Path, clock: FakeClock) -> None:
    path.parent.mkdir(parents=True)
    now = int(clock.now() * 1000)
    path.write_text(
        json.dumps(
            [
                {"sessionId": "old", "projectKey": "123", "cwd": "/p", "lastActivity": now - 10},
                {"sessionId": "new", "projectKey": "123", "cwd": "/p", "lastActivity": now},
            ]
        )
    )
    store = SessionStore(path, clock=clock)
    [only] = store.load()
    assert (only.key, only.session_id) == ("123", "new")


async def test_a_file_we_write_loads_in_mpg_with_every_session_and_its_fields(path: Path, clock: FakeClock) -> None:
    store = make_store(path, clock)
    store.put(entry("111", clock, channel_id="999", thread_id="111", thread_name="Add search", runs=1))
    store.put(
        entry(
            "222:pm",
            clock,
            channel_id="999",
            thread_id="222",
            agent="pm",
            worktree_path="/p/.worktrees/222-pm",
            project_dir="/p",
        )
    )
    store.put(entry("333", clock, session_id=None))  # restarted: MPG starts it fresh too
    assert await store.flush()

    loaded = load_as_mpg(path.read_text())

    now = int(clock.now() * 1000)
    assert loaded == {
        "111": {"sessionId": "sid-111", "projectKey": "111", "cwd": "/projects/111", "lastActivity": now},
        "222:pm": {
            "sessionId": "sid-222:pm",
            "projectKey": "222:pm",
            "cwd": "/projects/222:pm",
            "lastActivity": now,
            "worktreePath": "/p/.worktrees/222-pm",
            "projectDir": "/p",
        },
    }
    # Our own fields ride along in the same entries, and come back to us.
    assert read_json(path)["111"]["threadName"] == "Add search"
    again = {e.key: e for e in SessionStore(path, clock=clock).load()}
    assert again["111"].thread_name == "Add search" and again["333"].session_id is None


def test_a_file_mpg_wrote_loads_by_mpg_rules_and_is_written_back_in_its_form(path: Path, clock: FakeClock) -> None:
    path.parent.mkdir(parents=True)
    now = int(clock.now() * 1000)
    written_by_mpg = json.dumps(
        [
            {"sessionId": "a", "projectKey": "123", "cwd": "/p", "lastActivity": now},
            {
                "sessionId": "b",
                "projectKey": "456:qa",
                "cwd": "/p/.worktrees/456-qa",
                "lastActivity": now,
                "worktreePath": "/p/.worktrees/456-qa",
                "projectDir": "/p",
            },
        ],
        indent=2,
    )
    path.write_text(written_by_mpg)
    store = SessionStore(path, clock=clock)
    loaded = {e.key: e for e in store.load()}
    assert (loaded["123"].session_id, loaded["123"].cwd) == ("a", "/p")
    assert (loaded["456:qa"].session_id, loaded["456:qa"].project_dir) == ("b", "/p")

    store.put(entry("789", clock))
    assert store.save_now()
    assert load_as_mpg(path.read_text()) == {
        **load_as_mpg(written_by_mpg),
        **load_as_mpg(json.dumps([entry("789", clock).to_json()])),
    }


def test_a_non_durable_write_skips_fsync_but_is_still_atomic(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    atomic_write(path, '{"a": 1}\n', durable=False)
    assert synced == []
    assert path.read_text() == '{"a": 1}\n'
    atomic_write(path, '{"b": 2}\n')
    assert len(synced) == 2  # the file, then the directory holding the rename


async def test_burst_of_updates_is_one_write(path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    import mpg_tui.core.store as store_module

    writes: list[str] = []
    real = store_module.atomic_write

    def counting(target: Path, text: str, *, durable: bool = True) -> os.stat_result:
        writes.append(text)
        return real(target, text, durable=durable)

    monkeypatch.setattr(store_module, "atomic_write", counting)
    store = make_store(path, clock)
    for i in range(100):
        store.put(entry(str(i), clock))
    assert writes == []  # nothing written until the save delay passes
    clock.advance(1)  # the coalescing timer fires and starts one flush
    await store.close()
    assert len(writes) == 1
    assert len(read_json(path)) == 50  # and pruned to maxPersistedSessions


async def test_prunes_by_ttl_and_keeps_the_newest_by_count(path: Path, clock: FakeClock) -> None:
    store = make_store(path, clock, ttl_ms=7 * DAY_MS, max_entries=3)
    store.put(entry("expired", clock, age_ms=8 * DAY_MS))
    for age in range(5):
        store.put(entry(f"age{age}", clock, age_ms=age * 1000))
    await store.flush()
    assert sorted(read_json(path)) == ["age0", "age1", "age2"]
    assert sorted(e.key for e in store.entries()) == ["age0", "age1", "age2"]


async def test_load_drops_expired_entries(path: Path, clock: FakeClock) -> None:
    first = make_store(path, clock, ttl_ms=DAY_MS)
    first.put(entry("a", clock))
    await first.flush()
    clock.advance(2 * DAY_MS / 1000)
    second = SessionStore(path, clock=clock, ttl_ms=DAY_MS)
    assert second.load() == []
    assert second.dirty  # the next save takes it off the disk too
    await second.flush()
    assert read_json(path) == {}


async def test_save_merges_with_another_writers_entries(path: Path, clock: FakeClock) -> None:
    ours = make_store(path, clock)
    theirs = make_store(path, clock)
    ours.put(entry("shared", clock, session_id="ours"))
    await ours.flush()
    theirs.put(entry("theirs-only", clock))
    theirs.put(entry("shared", clock, session_id="theirs"))
    await theirs.flush()
    ours.put(entry("shared", clock, session_id="ours-again"))
    ours.put(entry("ours-only", clock))
    await ours.flush()
    on_disk = read_json(path)
    assert sorted(on_disk) == ["ours-only", "shared", "theirs-only"]
    assert on_disk["shared"]["sessionId"] == "ours-again"  # ours win on conflict
    assert ours.get("theirs-only") is not None  # and we now see theirs


async def test_untouched_entries_take_the_other_writers_newer_copy(path: Path, clock: FakeClock) -> None:
    ours = make_store(path, clock)
    ours.put(entry("k", clock, session_id="v1"))
    await ours.flush()
    theirs = make_store(path, clock)
    theirs.put(entry("k", clock, session_id="v2"))
    await theirs.flush()
    ours.put(entry("other", clock))
    await ours.flush()
    assert read_json(path)["k"]["sessionId"] == "v2"


async def test_deleted_keys_stay_deleted_even_if_another_writer_still_has_them(path: Path, clock: FakeClock) -> None:
    ours = make_store(path, clock)
    ours.put(entry("gone", clock))
    ours.put(entry("kept", clock))
    await ours.flush()
    theirs = make_store(path, clock)
    assert ours.delete("gone")
    await ours.flush()
    theirs.put(entry("theirs", clock))
    await theirs.flush()  # theirs still has "gone" in memory: writes it back
    assert "gone" in read_json(path)
    ours.put(entry("kept", clock, session_id="new"))
    await ours.flush()
    assert sorted(read_json(path)) == ["kept", "theirs"]
    assert ours.get("gone") is None


async def test_put_after_delete_brings_the_key_back(path: Path, clock: FakeClock) -> None:
    store = make_store(path, clock)
    store.put(entry("k", clock))
    store.delete("k")
    store.put(entry("k", clock, session_id="again"))
    await store.flush()
    assert read_json(path)["k"]["sessionId"] == "again"


async def test_write_leaves_no_temporary_files(path: Path, clock: FakeClock) -> None:
    store = make_store(path, clock)
    for i in range(3):
        store.put(entry(str(i), clock))
        await store.flush()
    assert sorted(p.name for p in path.parent.iterdir()) == ["sessions.json"]


def test_crash_between_write_and_rename_leaves_old_file_intact(
    path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    atomic_write(path, '{"old": 1}\n')

    def crash(_src: object, _dst: object) -> None:
        raise KeyboardInterrupt  # the process dies right before the rename

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, '{"new": 2}\n')
    assert path.read_text() == '{"old": 1}\n'
    assert [p.name for p in path.parent.iterdir()] == ["sessions.json"]


@pytest.mark.parametrize("content", ['{"truncated": {"sessionId": "a", "cw', "", "[1, 2", '"just a string"'])
async def test_corrupt_file_is_moved_aside_with_a_warning(
    path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(content)
    store = SessionStore(path, clock=clock)
    with caplog.at_level(logging.WARNING):
        assert store.load() == []
    aside = path.with_name(f"sessions.json.corrupt-{int(clock.now() * 1000)}")
    assert aside.read_text() == content
    assert not path.exists()
    assert "unreadable" in caplog.text
    store.put(entry("fresh", clock))
    await store.flush()
    assert list(read_json(path)) == ["fresh"]


async def test_bad_entries_are_skipped_and_the_original_is_kept(
    path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    path.parent.mkdir(parents=True)
    now = int(clock.now() * 1000)
    original = json.dumps(
        {
            "good": {"sessionId": "a", "projectKey": "good", "cwd": "/p", "lastActivity": now},
            "no-cwd": {"sessionId": "b", "projectKey": "no-cwd", "lastActivity": now},
            "bad-time": {"sessionId": "c", "projectKey": "bad-time", "cwd": "/p", "lastActivity": "yesterday"},
        }
    )
    path.write_text(original)
    with caplog.at_level(logging.WARNING):
        loaded = SessionStore(path, clock=clock).load()
    assert [e.key for e in loaded] == ["good"]
    assert "'no-cwd'" in caplog.text and "'lastActivity' must be a number" in caplog.text
    [copy] = path.parent.glob("sessions.json.corrupt-*")
    assert copy.read_text() == original


def test_parse_document_names_the_problem() -> None:
    _, problems = parse_document('{"k": {"sessionId": 5, "cwd": "/p", "lastActivity": 1}}')
    assert problems == ["entry 'k': 'sessionId' must be a string"]


async def test_unwritable_location_is_logged_kept_in_memory_and_retried(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "profile"
    blocker.write_text("a file where the directory should be")
    store = make_store(blocker / "sessions.json", clock)
    store.put(entry("k", clock))
    with caplog.at_level(logging.ERROR):
        assert await store.flush() is False
    assert any(r.levelno == logging.ERROR and "could not save sessions" in r.message for r in caplog.records)
    assert store.get("k") is not None and store.dirty

    blocker.unlink()
    clock.advance(60)  # the retry timer fires
    await store.close()
    assert not store.dirty
    assert list(read_json(blocker / "sessions.json")) == ["k"]


async def test_pending_run_marker_round_trips(path: Path, clock: FakeClock) -> None:
    store = make_store(path, clock)
    marker = PendingRun(started_at_ms=123, runner="tmux", prompt_preview="build it")
    store.put(entry("k", clock, pending_run=marker))
    await store.flush()
    assert read_json(path)["k"]["pendingRun"] == {"startedAt": 123, "runner": "tmux", "prompt": "build it"}
    [reloaded] = SessionStore(path, clock=clock).load()
    assert reloaded.pending_run == marker


async def test_session_without_id_is_persisted_as_null(path: Path, clock: FakeClock) -> None:
    store = make_store(path, clock)
    store.put(entry("k", clock, session_id=None))
    await store.flush()
    assert read_json(path)["k"]["sessionId"] is None
    [reloaded] = SessionStore(path, clock=clock).load()
    assert reloaded.session_id is None


async def test_changes_made_while_a_write_is_in_flight_are_kept_and_saved_next(
    path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import threading

    import mpg_tui.core.store as store_module

    entered, proceed = threading.Event(), threading.Event()
    real = store_module.atomic_write

    def paused(target: Path, text: str, *, durable: bool = True) -> os.stat_result:
        entered.set()
        proceed.wait(5)
        return real(target, text, durable=durable)

    monkeypatch.setattr(store_module, "atomic_write", paused)
    store = make_store(path, clock)
    store.put(entry("a", clock))
    first = asyncio.create_task(store.flush())
    await asyncio.to_thread(entered.wait, 5)
    store.put(entry("b", clock))  # lands while "a" is being written
    store.delete("a")
    proceed.set()
    assert await first
    assert sorted(read_json(path)) == ["a"]
    assert store.get("b") is not None and store.get("a") is None and store.dirty
    await store.flush()
    assert sorted(read_json(path)) == ["b"]


async def test_ten_thousand_entries_round_trip(path: Path, clock: FakeClock) -> None:
    store = make_store(path, clock, max_entries=20_000)
    for i in range(10_000):
        store.put(entry(f"{i}:agent", clock, age_ms=i))
    await store.flush()
    reloaded = SessionStore(path, clock=clock, max_entries=20_000).load()
    assert len(reloaded) == 10_000
    assert {e.key for e in reloaded} == {f"{i}:agent" for i in range(10_000)}
