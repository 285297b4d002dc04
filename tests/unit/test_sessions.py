import asyncio
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mpg_tui.config import GatewayConfig, ProjectView, parse_config
from mpg_tui.core.attachments import ATTACHMENTS_DIR, session_folder
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.events import (
    Event,
    RunFinished,
    RunProgress,
    RunRecovering,
    RunStarted,
    SessionIdled,
    SessionKilled,
    SessionQueued,
    SessionRestarted,
)
from mpg_tui.core.runner import Progress, RunRequest, RunResult
from mpg_tui.core.session_state import TurnOutcome
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.sessions_file import StoredSession
from mpg_tui.core.store import SessionStore
from mpg_tui.core.turn_runner import (
    CHANGED_NOTICE,
    DETACHED_ERROR,
    EXPIRED_NOTICE,
    KILLED_ERROR,
    RECOVERED_NOTICE,
    SHUTDOWN_ERROR,
)
from mpg_tui.worktrees import WorktreeManager, git_environment
from tests.unit.fake_runner import FakeRunner

CHANNEL = "123456789012345678"
IDLE_S = 60.0


class Harness:
    """A SessionManager on a FakeClock and FakeRunner, recording every event."""

    def __init__(self, tmp_path: Path, *, max_concurrent: int = 4, worktrees: bool = False, **project: Any) -> None:
        self.tmp_path = tmp_path
        self.directory = tmp_path / "project"
        self.directory.mkdir(exist_ok=True)
        self.config: GatewayConfig = parse_config(
            {
                "defaults": {"maxConcurrentSessions": max_concurrent, "idleTimeoutMs": int(IDLE_S * 1000)},
                "projects": {CHANNEL: {"directory": str(self.directory), "worktrees": worktrees, **project}},
            }
        )
        view = self.config.project(CHANNEL)
        assert view is not None
        self.project: ProjectView = view
        self.clock = FakeClock()
        self.bus = EventBus()
        self.events: list[Event] = []
        self.bus.listen(self.events.append)
        self.runner = FakeRunner()
        self.worktrees = WorktreeManager() if worktrees else None
        self.store = self.new_store()
        self.manager = self.new_manager()

    @property
    def sessions_file(self) -> Path:
        return self.tmp_path / "sessions.json"

    def new_store(self, ttl_ms: int = 604_800_000) -> SessionStore:
        return SessionStore(self.sessions_file, clock=self.clock, ttl_ms=ttl_ms)

    def attach(self, key: str, base: Path | None = None) -> Path:
        """A file saved for session ``key`` where the gateway saves attachments."""
        folder = (base or self.directory) / ATTACHMENTS_DIR / session_folder(key) / "1000"
        folder.mkdir(parents=True)
        (folder / "notes.txt").write_text("notes")
        return folder.parent

    def attached(self) -> list[str]:
        root = self.directory / ATTACHMENTS_DIR
        return sorted(p.name for p in root.iterdir()) if root.exists() else []

    def new_manager(
        self, store: SessionStore | None = None, runner: FakeRunner | None = None, stop_grace_s: float = 10.0
    ) -> SessionManager:
        return SessionManager(
            config=self.config,
            store=store or self.store,
            runners={"direct": runner or self.runner},
            bus=self.bus,
            clock=self.clock,
            worktrees=self.worktrees,
            command=("fake-claude", "--flag"),
            child_env={"EXTRA": "1"},
            stop_grace_s=stop_grace_s,
        )

    def submit(self, key: str, prompt: str = "hello", **kwargs: Any) -> "asyncio.Task[TurnOutcome]":
        thread = key.split(":")[0]
        return asyncio.create_task(self.manager.submit(key, self.project, thread, prompt, **kwargs))

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def on_disk(self) -> dict[str, dict[str, Any]]:
        data = json.loads(self.sessions_file.read_text())
        assert isinstance(data, list)  # MPG's form
        return {item["projectKey"]: item for item in data}


@pytest.fixture
async def h(tmp_path: Path) -> Harness:
    harness = Harness(tmp_path)
    await harness.manager.load()
    return harness


def recorder() -> tuple[list[int], Callable[[int], Any]]:
    seen: list[int] = []

    async def on_queued(position: int) -> None:
        seen.append(position)

    return seen, on_queued


async def test_runs_prompt_in_project_directory_with_configured_arguments(h: Harness) -> None:
    outcome = await h.submit("111", "build it")
    [request] = h.runner.requests
    assert request.cwd == h.directory and request.prompt == "build it"
    assert request.args == h.project.claude_args()
    assert request.session_id is None
    assert request.timeout_s == h.config.defaults.run_timeout_ms / 1000
    assert request.command == ("fake-claude", "--flag") and request.env == {"EXTRA": "1"}
    assert (request.thread_id, request.project_key) == ("111", CHANNEL)
    assert outcome.result.ok and outcome.notices == []
    info = outcome.session
    assert (info.key, info.project_key, info.thread_id, info.state, info.runs) == ("111", CHANNEL, "111", "idle", 1)
    assert info.session_id == "session-1" and info.last_reply == "echo: build it"
    assert (info.cost_usd, info.input_tokens, info.output_tokens) == (0.01, 10, 5)


async def test_next_prompt_resumes_the_session(h: Harness) -> None:
    await h.submit("111")
    await h.submit("111", timeout_s=12.5)
    assert [r.session_id for r in h.runner.requests] == [None, "session-1"]
    assert h.runner.requests[1].timeout_s == 12.5


async def test_prompts_for_one_key_run_one_at_a_time_in_order(h: Harness) -> None:
    first = h.runner.hold(key="111")
    seen, on_queued = recorder()
    tasks = [h.submit("111", "one")]
    await first.started.wait()
    tasks += [h.submit("111", "two", on_queued=on_queued), h.submit("111", "three", on_queued=on_queued)]
    await asyncio.sleep(0)  # let both submits queue up (no time passes)
    assert seen == [1, 2]
    assert h.manager.position("111") == 3
    info = h.manager.get("111")
    assert info is not None and (info.state, info.queue_depth) == ("running", 2)
    first.release()
    outcomes = await asyncio.gather(*tasks)
    assert [r.prompt for r in h.runner.requests] == ["one", "two", "three"]
    assert [o.result.text for o in outcomes] == ["echo: one", "echo: two", "echo: three"]
    assert [e.position for e in h.of(SessionQueued)] == [1, 2]


async def test_global_limit_queues_the_fifth_session(h: Harness) -> None:
    held = [h.runner.hold(key=str(k)) for k in range(4)]
    tasks = [h.submit(str(k)) for k in range(4)]
    await h.runner.wait_running(4)
    assert h.manager.position("fifth") == 1
    seen, on_queued = recorder()
    held.append(h.runner.hold(key="fifth"))
    fifth = h.submit("fifth", on_queued=on_queued)
    await asyncio.sleep(0)
    assert seen == [1]
    assert sorted(h.runner.running) == ["0", "1", "2", "3"]
    info = h.manager.get("fifth")
    assert info is not None and info.state == "queued"
    assert h.manager.position("sixth") == 2
    held[2].release()
    await h.runner.wait_running(key="fifth")
    for run in held:
        run.release()
    await asyncio.gather(*tasks, fifth)
    assert h.manager.position("sixth") == 0


async def test_session_goes_idle_after_timeout_and_stays_on_disk(h: Harness) -> None:
    await h.submit("111")
    h.clock.advance(IDLE_S - 1)
    assert h.manager.get("111") is not None
    h.clock.advance(2)
    assert h.manager.get("111") is None
    assert [e.key for e in h.of(SessionIdled)] == ["111"]
    await h.store.flush()
    assert h.on_disk()["111"]["sessionId"] == "session-1"


async def test_idle_timeout_does_not_fire_while_running_or_queued(h: Harness) -> None:
    await h.submit("111")
    run = h.runner.hold(key="111")
    task = h.submit("111")
    await run.started.wait()
    h.clock.advance(IDLE_S * 10)
    assert h.manager.get("111") is not None and h.of(SessionIdled) == []
    run.release()
    await task
    h.clock.advance(IDLE_S + 1)
    assert h.manager.get("111") is None


async def test_activity_rearms_the_idle_timer(h: Harness) -> None:
    await h.submit("111")
    h.clock.advance(IDLE_S * 0.75)
    await h.submit("111")
    h.clock.advance(IDLE_S * 0.75)
    assert h.manager.get("111") is not None
    h.clock.advance(IDLE_S * 0.5)
    assert h.manager.get("111") is None


async def test_idled_session_is_revived_with_its_session_id(h: Harness) -> None:
    await h.submit("111")
    h.clock.advance(IDLE_S + 1)
    await h.submit("111")
    assert h.runner.requests[-1].session_id == "session-1"
    info = h.manager.get("111")
    assert info is not None and info.runs == 2


async def test_failed_resume_is_retried_fresh_with_a_notice(h: Harness) -> None:
    await h.submit("111")
    h.runner.script(RunResult(ok=False, error="No conversation found", error_kind="session_not_found"))
    outcome = await h.submit("111")
    assert [r.session_id for r in h.runner.requests] == [None, "session-1", None]
    assert outcome.result.ok and outcome.notices == [EXPIRED_NOTICE]
    assert outcome.session.session_id == "session-2"


async def test_failure_that_a_fresh_session_would_not_fix_is_not_retried(h: Harness) -> None:
    await h.submit("111")
    h.runner.script(RunResult(ok=False, error="API Error: 429", error_kind="rate_limit"))
    outcome = await h.submit("111")
    assert len(h.runner.requests) == 2
    assert not outcome.result.ok and outcome.notices == []
    assert outcome.session.session_id == "session-1"  # the conversation is kept for next time
    assert outcome.session.last_error == "API Error: 429"


async def test_changed_session_id_carries_a_notice(h: Harness) -> None:
    await h.submit("111")
    h.runner.script(RunResult(ok=True, text="hi", session_id="other"))
    outcome = await h.submit("111")
    assert outcome.notices == [CHANGED_NOTICE]
    assert outcome.session.session_id == "other"


async def test_kill_mid_run_answers_queued_prompts_and_forgets_the_session(h: Harness) -> None:
    await h.submit("111")
    run = h.runner.hold(key="111")
    running = h.submit("111", "long")
    await run.started.wait()
    queued = [h.submit("111", "later"), h.submit("111", "even later")]
    await asyncio.sleep(0)
    assert await h.manager.kill("111")
    outcomes = await asyncio.gather(running, *queued)
    assert [o.result.error for o in outcomes] == [KILLED_ERROR] * 3
    assert all(o.result.error_kind == "cancelled" for o in outcomes)
    assert h.runner.cancel_calls == ["111"]
    assert [r.prompt for r in h.runner.requests] == ["hello", "long"]
    assert h.manager.get("111") is None and h.store.get("111") is None
    assert "111" not in h.on_disk()
    assert [e.key for e in h.of(SessionKilled)] == ["111"]
    await h.submit("111")
    assert h.runner.requests[-1].session_id is None  # a new session, not a resumed one


async def test_prompt_after_kill_waits_for_the_killed_run_to_end(h: Harness) -> None:
    h.manager = h.new_manager(stop_grace_s=0)  # kill() returns before the run has stopped
    run = h.runner.hold(key="111")
    old = h.submit("111", "old")
    await run.started.wait()

    async def stubborn_cancel(key: str) -> bool:
        run.cancelled = True  # noted, but the run ends only when released below
        return True

    h.runner.cancel = stubborn_cancel  # type: ignore[method-assign]
    assert await h.manager.kill("111")
    new = h.submit("111", "new")
    for _ in range(3):
        await asyncio.sleep(0)
    await h.store.flush()  # had the new turn started, its pendingRun write would be done by now
    assert [r.prompt for r in h.runner.requests] == ["old"]
    run.release()
    assert (await old).result.error == KILLED_ERROR
    assert (await new).result.ok
    assert [r.prompt for r in h.runner.requests] == ["old", "new"]


async def test_kill_of_a_session_waiting_for_a_slot_frees_its_place(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_concurrent=1)
    await h.manager.load()
    run = h.runner.hold(key="a")
    first = h.submit("a")
    await run.started.wait()
    waiting = h.submit("b")
    await asyncio.sleep(0)
    assert await h.manager.kill("b")
    assert (await waiting).result.error == KILLED_ERROR
    run.release()
    await first
    assert (await h.submit("c")).result.ok  # the slot was not leaked
    assert [r.key for r in h.runner.requests] == ["a", "c"]


async def test_kill_of_unknown_session_is_false(h: Harness) -> None:
    assert await h.manager.kill("nope") is None
    assert h.of(SessionKilled) == []


async def test_kill_of_a_session_only_on_disk_removes_it_there(h: Harness) -> None:
    await h.submit("111")
    h.clock.advance(IDLE_S + 1)
    assert await h.manager.kill("111")
    assert h.store.get("111") is None and "111" not in h.on_disk()
    assert h.of(SessionKilled)[0].project_key == CHANNEL


async def test_restart_clears_only_the_session_id(h: Harness) -> None:
    await h.submit("111")
    assert await h.manager.restart("111")
    info = h.manager.get("111")
    assert info is not None and info.session_id is None and info.runs == 1
    assert h.on_disk()["111"]["sessionId"] is None
    assert [e.key for e in h.of(SessionRestarted)] == ["111"]
    await h.submit("111")
    assert h.runner.requests[-1].session_id is None
    assert await h.manager.restart("unknown") is False


async def test_restart_during_a_run_wins_over_the_runs_session_id(h: Harness) -> None:
    run = h.runner.hold(key="111")
    task = h.submit("111")
    await run.started.wait()
    await h.manager.restart("111")
    run.release()
    outcome = await task
    assert outcome.result.ok and outcome.session.session_id is None


async def test_new_manager_on_the_same_store_resumes_the_session(h: Harness) -> None:
    await h.submit("111:engineer")
    await h.manager.close()
    store = h.new_store()
    h.manager = h.new_manager(store)
    await h.manager.load()
    assert h.manager.get("111:engineer") is None  # only on disk until a prompt arrives
    await h.submit("111:engineer")
    request = h.runner.requests[-1]
    assert request.session_id == "session-1" and request.cwd == h.directory


async def test_thread_name_is_stored_with_its_sessions_and_shown_after_a_restart(h: Harness) -> None:
    h.manager.name_thread("111", "Add a dark-mode toggle")
    await h.submit("111")
    await h.submit("111:pm")  # a later agent of the same thread
    assert [s.thread_name for s in h.manager.sessions()] == ["Add a dark-mode toggle"] * 2
    await h.manager.close()
    assert h.on_disk()["111:pm"]["threadName"] == "Add a dark-mode toggle"

    h.manager = h.new_manager(h.new_store())
    await h.manager.load()
    revived = await h.submit("111")
    joined = await h.submit("111:engineer")  # never stored itself: named from its thread's sessions
    assert revived.session.thread_name == "Add a dark-mode toggle"
    assert joined.session.thread_name == "Add a dark-mode toggle"


async def test_kill_removes_the_sessions_attachments_and_no_one_elses(h: Harness) -> None:
    await h.submit("111")
    await h.submit("222")
    h.attach("111")
    h.attach("222")
    assert await h.manager.kill("111")
    assert h.attached() == ["222"]


async def test_attachments_of_a_session_that_expires_are_removed(h: Harness) -> None:
    day_s = 86_400.0
    h.store = h.new_store(ttl_ms=int(day_s * 1000))
    h.manager = h.new_manager()
    await h.manager.load()
    await h.submit("111")
    h.attach("111")
    h.clock.advance(IDLE_S + 1)  # idle: out of memory, still on disk
    h.clock.advance(day_s)
    await h.submit("222")  # the next save prunes "111"
    h.attach("222")
    await h.manager.close()
    assert "111" not in h.on_disk()
    assert h.attached() == ["222"]


async def test_start_up_sweeps_attachments_of_sessions_no_one_remembers(h: Harness) -> None:
    await h.submit("111")
    await h.manager.close()
    h.attach("111")
    h.attach("999")  # killed by a gateway that left the files, or expired while none ran
    elsewhere = h.tmp_path / "elsewhere"
    h.store.put(
        StoredSession(key="333", session_id="s", cwd=str(elsewhere), last_activity_ms=int(h.clock.now() * 1000))
    )
    assert h.store.save_now()
    h.attach("444", base=elsewhere)
    manager = h.new_manager(h.new_store())
    await manager.load()
    assert h.attached() == ["111"]
    assert not (elsewhere / ATTACHMENTS_DIR).exists()


async def test_pending_run_marker_survives_a_crash(h: Harness) -> None:
    run = h.runner.hold(key="111")
    task = h.submit("111", "deploy to production")
    await run.started.wait()
    await asyncio.gather(*h.manager._background)  # the marker's write, started with the run
    marker = h.on_disk()["111"]["pendingRun"]  # on disk while claude runs, with no other save
    assert marker["runner"] == "direct" and marker["prompt"] == "deploy to production"

    # The gateway dies here: nothing is closed or flushed. A new one starts.
    manager = h.new_manager(h.new_store(), runner=FakeRunner())
    await manager.load()
    [lost] = manager.pending_runs_from_disk()
    assert lost.key == "111" and lost.channel_id == CHANNEL and lost.thread_id == "111"
    assert lost.pending_run is not None and lost.pending_run.prompt_preview == "deploy to production"
    manager.forget_pending_run("111")
    assert manager.pending_runs_from_disk() == []
    await manager.close()
    assert "pendingRun" not in h.on_disk()["111"]

    run.release()
    await task


async def test_finished_run_clears_its_marker(h: Harness) -> None:
    await h.submit("111")
    await h.store.flush()
    assert "pendingRun" not in h.on_disk()["111"]


async def test_agent_turn_appends_its_system_prompt(tmp_path: Path) -> None:
    h = Harness(tmp_path, agents=["engineer"])
    await h.manager.load()
    engineer = h.project.agent("engineer")
    assert engineer is not None
    outcome = await h.submit("111:engineer", agent=engineer, timeout_s=180)
    request = h.runner.requests[0]
    assert request.args == [*h.project.claude_args(), "--append-system-prompt", engineer.system_prompt]
    assert request.args[-1].startswith("Your role: Software Engineer\n\n")
    assert outcome.session.agent == "engineer"
    await h.store.flush()
    assert h.on_disk()["111:engineer"]["agent"] == "engineer"


async def test_progress_is_published_kept_as_a_tail_and_passed_on(h: Harness) -> None:
    progress = [
        Progress(step="init", text="", session_id="s"),
        Progress(step="tool", text="ls -la", tool="Bash"),
        Progress(step="text", text="Looking around\nsecond line"),
    ]
    h.runner.script(progress=progress)
    seen: list[Progress] = []
    outcome = await h.submit("111", on_progress=seen.append)
    assert seen == progress
    assert [(e.step, e.tool) for e in h.of(RunProgress)] == [("init", None), ("tool", "Bash"), ("text", None)]
    assert outcome.session.progress == ["session started", "Bash: ls -la", "Looking around second line"]


async def test_run_events_describe_the_turn(h: Harness) -> None:
    await h.submit("111", "a prompt")
    [started] = h.of(RunStarted)
    [finished] = h.of(RunFinished)
    assert (started.key, started.project_key, started.runner, started.prompt_preview) == (
        "111",
        CHANNEL,
        "direct",
        "a prompt",
    )
    assert started.at == h.clock.now()
    assert finished.ok and finished.session_id == "session-1" and finished.cost_usd == 0.01


async def test_runner_exception_becomes_a_failed_outcome(h: Harness) -> None:
    h.runner.script(raises=RuntimeError("boom"))
    outcome = await h.submit("111")
    assert not outcome.result.ok and "boom" in (outcome.result.error or "")
    assert (await h.submit("111")).result.ok  # the session keeps working


async def test_cancelled_caller_takes_its_queued_prompt_back(h: Harness) -> None:
    run = h.runner.hold(key="111")
    first = h.submit("111", "one")
    await run.started.wait()
    second = h.submit("111", "two")
    await asyncio.sleep(0)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    run.release()
    await first
    assert [r.prompt for r in h.runner.requests] == ["one"]


async def test_close_answers_waiting_prompts_and_keeps_the_marker_of_a_cut_run(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_concurrent=1)
    await h.manager.load()
    run = h.runner.hold(key="a")
    running = h.submit("a")
    await run.started.wait()
    waiting = h.submit("b")
    await asyncio.sleep(0)
    await h.manager.close()
    assert h.runner.closed
    assert (await waiting).result.error == SHUTDOWN_ERROR
    assert (await running).result.error_kind == "cancelled"
    assert "pendingRun" in h.on_disk()["a"]  # the next start tells the thread its run was lost
    assert (await h.manager.submit("c", h.project, "c", "late")).result.error == SHUTDOWN_ERROR


async def test_close_leaves_tmux_runs_going_and_answers_their_callers(tmp_path: Path) -> None:
    h = Harness(tmp_path, persistence="tmux")
    h.runner = FakeRunner("tmux", runs_survive_close=True)
    h.manager = h.new_manager(stop_grace_s=3600)  # close() must not wait for a tmux run at all
    await h.manager.load()
    run = h.runner.hold(key="a")
    running = h.submit("a", "long job")
    await run.started.wait()
    await h.manager.close()
    outcome = await running
    assert outcome.result.error_kind == "detached"  # the thread is not told of a failure: it is not one
    assert outcome.result.error == DETACHED_ERROR
    assert h.runner.cancel_calls == []  # the tmux session keeps running
    assert h.on_disk()["a"]["pendingRun"]["runner"] == "tmux"


async def test_sessions_lists_live_sessions_most_recent_first(h: Harness) -> None:
    await h.submit("111")
    h.clock.advance(1)
    await h.submit("222")
    assert [s.key for s in h.manager.sessions()] == ["222", "111"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True, env=git_environment()
    ).stdout


async def test_worktree_per_session_created_and_removed_on_kill(tmp_path: Path) -> None:
    h = Harness(tmp_path, worktrees=True)
    git(h.directory, "init", "--quiet")
    git(h.directory, "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "i", "--allow-empty")
    await h.manager.load()
    outcome = await h.submit("111:pm")
    worktree = h.directory.resolve() / ".worktrees" / "111-pm"
    assert h.runner.requests[0].cwd == worktree
    assert outcome.session.worktree_path == str(worktree) and outcome.session.cwd == str(worktree)
    await h.store.flush()
    assert h.on_disk()["111:pm"]["worktreePath"] == str(worktree)
    assert await h.manager.kill("111:pm")
    assert not worktree.exists()
    assert git(h.directory, "branch", "--list", "mpg/*") == ""


async def test_workspace_is_ready_before_the_first_prompt(tmp_path: Path) -> None:
    h = Harness(tmp_path, worktrees=True)
    git(h.directory, "init", "--quiet")
    git(h.directory, "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "i", "--allow-empty")
    await h.manager.load()
    where = await h.manager.workspace("111", h.project, "111")
    assert where == h.directory.resolve() / ".worktrees" / "111" and where.is_dir()
    await h.submit("111")
    assert h.runner.requests[0].cwd == where
    h.clock.advance(IDLE_S + 1)
    assert h.manager.get("111") is None


async def test_start_up_removes_worktrees_of_forgotten_sessions(tmp_path: Path) -> None:
    h = Harness(tmp_path, worktrees=True)
    git(h.directory, "init", "--quiet")
    git(h.directory, "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "i", "--allow-empty")
    await h.manager.load()
    await h.submit("111")
    assert h.worktrees is not None
    await h.worktrees.ensure(h.directory, "999")  # left behind by a session nobody remembers
    await h.manager.close()
    manager = h.new_manager(h.new_store())
    await manager.load()
    assert sorted(p.name for p in (h.directory / ".worktrees").iterdir()) == ["111"]


async def test_stored_entry_from_mpg_is_revived(h: Harness) -> None:
    h.store.put(
        StoredSession(key="555", session_id="mpg-session", cwd=str(h.directory), last_activity_ms=1_700_000_000_000)
    )
    await h.submit("555")
    request: RunRequest = h.runner.requests[0]
    assert request.session_id == "mpg-session" and request.cwd == h.directory


class _Recovered:
    """A stand-in for ``RecoveredRun.wait``: progress, then a result when released."""

    def __init__(self, result: RunResult) -> None:
        self.result = result
        self.release = asyncio.Event()
        self.waiting = asyncio.Event()

    async def wait(self, on_progress: Any) -> RunResult:
        self.waiting.set()
        on_progress(Progress(step="tool", text="Edit app.py", tool="Edit"))
        await self.release.wait()
        return self.result


async def test_adopted_run_shows_as_recovering_then_records_its_result(h: Harness) -> None:
    recovered = _Recovered(RunResult(ok=True, text="done while we were down", session_id="s-9", cost_usd=0.5))
    adopting = asyncio.create_task(h.manager.adopt("777", h.project, "777", recovered.wait, started_at=10.0))
    await recovered.waiting.wait()
    info = h.manager.get("777")
    assert info is not None and info.state == "recovering"
    assert info.run_started_at == 10.0
    assert info.progress  # live progress of the recovered run is shown too
    assert [e.key for e in h.of(RunRecovering)] == ["777"]
    recovered.release.set()
    outcome = await adopting
    assert outcome.result.text == "done while we were down"
    assert outcome.notices == [RECOVERED_NOTICE]
    finished = h.of(RunFinished)[-1]
    assert finished.recovered and finished.cost_usd == 0.5
    assert h.manager.get("777").session_id == "s-9"  # type: ignore[union-attr]


async def test_prompt_for_a_recovering_key_waits_behind_the_recovered_run(h: Harness) -> None:
    recovered = _Recovered(RunResult(ok=True, text="old", session_id="s-1"))
    adopting = asyncio.create_task(h.manager.adopt("888", h.project, "888", recovered.wait))
    await recovered.waiting.wait()
    follow_up = h.submit("888", "next")
    await asyncio.sleep(0)
    assert h.runner.requests == []  # never two runs of one key
    recovered.release.set()
    await adopting
    outcome = await follow_up
    assert outcome.result.ok
    assert h.runner.requests[-1].session_id == "s-1"  # it resumes what the recovered run returned


async def test_acknowledge_reaches_the_runner(h: Harness) -> None:
    await h.manager.acknowledge("123")
    assert h.runner.acknowledged == ["123"]
