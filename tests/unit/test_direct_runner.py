"""The direct runner (and the command line it builds) against the stand-in claude."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import secrets
import signal
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mpg_tui.core.clock import FakeClock
from mpg_tui.core.runner import Progress, ProgressCallback, RunRequest
from mpg_tui.runners import process
from mpg_tui.runners.command import build_argv, child_env, is_secret_name
from mpg_tui.runners.direct import REGISTRY_PREFIX, DirectRunner
from mpg_tui.runners.run_registry import RUN_ID_ENV, RunRecord

if TYPE_CHECKING:
    from tests.unit.conftest import StandIn


def collect() -> tuple[list[Progress], asyncio.Event, ProgressCallback]:
    """A progress callback that records everything and flags the first ``init``."""
    seen: list[Progress] = []
    started = asyncio.Event()

    def on_progress(progress: Progress) -> None:
        seen.append(progress)
        if progress.step == "init":
            started.set()

    return seen, started, on_progress


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


async def ended(pid: int, timeout: float = 10.0) -> bool:
    """Wait for ``pid`` to exit; False if it is still running after ``timeout``.

    A signal is delivered at once but acted on a moment later, so a process just sent
    SIGKILL may still show as running. A pidfd becomes readable when it has exited.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    loop.add_reader(pidfd, lambda: exited.done() or exited.set_result(None))
    try:
        await asyncio.wait_for(exited, timeout)
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


# -- the command line ----------------------------------------------------------------------


def request(args: list[str], session_id: str | None = None) -> RunRequest:
    return RunRequest(key="k", cwd=Path("."), prompt="p", args=args, session_id=session_id)


def test_argv_replaces_configured_json_output_with_stream_json_and_verbose() -> None:
    argv = build_argv(request(["--permission-mode", "acceptEdits", "--output-format", "json"]))
    assert argv == [
        "claude",
        "--print",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "acceptEdits",
    ]


def test_argv_without_streaming_asks_for_json_whatever_the_config_pinned() -> None:
    argv = build_argv(request(["--output-format=text", "--model", "opus"]), stream=False)
    assert argv == ["claude", "--print", "--output-format", "json", "--model", "opus"]


def test_argv_puts_resume_before_a_variadic_tool_list_and_never_the_prompt() -> None:
    req = RunRequest(
        key="k",
        cwd=Path("."),
        prompt="-rf everything",
        args=["--allowed-tools", "Read", "Edit"],
        session_id="abc",
        command=("/opt/claude", "--debug"),
    )
    argv = build_argv(req)
    assert argv[:2] == ["/opt/claude", "--debug"]
    assert argv.index("--resume") < argv.index("--allowed-tools")
    assert argv[argv.index("--resume") + 1] == "abc"
    assert argv[-3:] == ["--allowed-tools", "Read", "Edit"]
    assert "-rf everything" not in argv


def test_argv_keeps_a_configured_verbose_once() -> None:
    argv = build_argv(request(["--verbose", "--output-format", "json"]))
    assert argv.count("--verbose") == 1


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DISCORD_BOT_TOKEN", True),
        ("MPG_DASHBOARD_TOKEN", True),
        ("MY_DISCORD_WEBHOOK", True),
        ("GITHUB_TOKEN", True),
        ("STRIPE_SECRET", True),
        ("ANTHROPIC_API_KEY", False),
        ("ANTHROPIC_AUTH_TOKEN", False),
        ("CLAUDE_CODE_OAUTH_TOKEN", False),
        ("PATH", False),
        ("TOKENIZER_PATH", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_child_env_drops_secrets_and_applies_extra_last() -> None:
    base = {"PATH": "/bin", "DISCORD_BOT_TOKEN": "t0k", "ANTHROPIC_API_KEY": "k", "HOME": "/h"}
    env = child_env({"HOME": "/other", "CLAUDE_CONFIG_DIR": "/c"}, base=base)
    assert env == {"PATH": "/bin", "ANTHROPIC_API_KEY": "k", "HOME": "/other", "CLAUDE_CONFIG_DIR": "/c"}


# -- running the stand-in ------------------------------------------------------------------


async def test_reply_session_cost_and_tokens_come_back(stand_in: StandIn) -> None:
    result = await DirectRunner().run(stand_in.request("hello there\nsecond line"), lambda _p: None)
    assert result.ok, result.error
    assert result.text == "[claude] hello there"
    assert result.session_id
    assert result.cost_usd > 0
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert result.exit_code == 0
    session_files = list((stand_in.config_dir / "projects").rglob(f"{result.session_id}.jsonl"))
    assert len(session_files) == 1


async def test_resume_keeps_the_session_and_its_history(stand_in: StandIn) -> None:
    runner = DirectRunner()
    first = await runner.run(stand_in.request("remember the llama"), lambda _p: None)
    second = await runner.run(stand_in.request("[[recall]]", session_id=first.session_id), lambda _p: None)
    assert second.ok, second.error
    assert second.session_id == first.session_id
    assert second.text == "previous: remember the llama"
    argv = stand_in.invocations()[-1]["argv"]
    assert argv[argv.index("--resume") + 1] == first.session_id


async def test_resume_from_another_directory_is_session_not_found(stand_in: StandIn, tmp_path: Path) -> None:
    runner = DirectRunner()
    first = await runner.run(stand_in.request("hi"), lambda _p: None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = await runner.run(stand_in.request("again", cwd=elsewhere, session_id=first.session_id), lambda _p: None)
    assert result.error_kind == "session_not_found"
    assert result.session_id is None


async def test_prompt_arrives_verbatim_and_is_never_run_by_a_shell(stand_in: StandIn, tmp_path: Path) -> None:
    prompt = (
        "-x --help --output-format text\n"
        "\"double\" 'single' $(touch pwned) `touch pwned2` ; touch pwned3 && echo $HOME\n"
        "  indented\n\n" + "body line with ünïcödé ✓\n" * 4000 + "\\n is not an escape"
    )
    assert len(prompt.encode()) > 100_000
    result = await DirectRunner().run(stand_in.request(prompt), lambda _p: None)
    assert result.ok, result.error
    entry = stand_in.invocations()[-1]
    assert entry["prompt"] == prompt
    assert all(prompt[:10] not in arg for arg in entry["argv"])
    assert not [p for p in tmp_path.rglob("pwned*")]
    assert result.text == "[claude] -x --help --output-format text"


async def test_variadic_allowed_tools_does_not_swallow_the_prompt(stand_in: StandIn) -> None:
    req = stand_in.request("summarise the repo", args=["--output-format", "json", "--allowed-tools", "Read", "Grep"])
    result = await DirectRunner().run(req, lambda _p: None)
    assert result.ok, result.error
    assert result.text == "[claude] summarise the repo"
    assert stand_in.invocations()[-1]["argv"][-3:] == ["--allowed-tools", "Read", "Grep"]


async def test_progress_callbacks_arrive_in_order(stand_in: StandIn) -> None:
    seen, _, on_progress = collect()
    req = stand_in.request("look around [[tool:Read:src/app.py]] [[tool:Grep:needle]] [[tool:Bash:git log -1]]")
    result = await DirectRunner().run(req, on_progress)
    assert result.ok, result.error
    assert [(p.step, p.text) for p in seen] == [
        ("init", "Claude started (claude-sonnet-4-5-20250929)"),
        ("tool", "Read src/app.py"),
        ("tool", "Grep needle"),
        ("tool", "Bash git log -1"),
        ("text", "[claude] look around"),
    ]
    assert seen[0].session_id == result.session_id


async def test_a_failing_progress_callback_does_not_break_the_run(stand_in: StandIn) -> None:
    def broken(_progress: Progress) -> None:
        raise RuntimeError("face crashed")

    result = await DirectRunner().run(stand_in.request("still fine [[tool:Read:x]]"), broken)
    assert result.ok and result.text == "[claude] still fine"


async def test_json_mode_runner_gets_no_progress_but_the_same_result(stand_in: StandIn) -> None:
    seen, _, on_progress = collect()
    result = await DirectRunner(stream=False).run(stand_in.request("plain [[tool:Read:x]]"), on_progress)
    assert result.ok and result.text == "[claude] plain"
    assert seen == []
    assert "stream-json" not in stand_in.invocations()[-1]["argv"]


async def test_a_reply_far_longer_than_a_stream_reader_line_limit_comes_back_whole(stand_in: StandIn) -> None:
    result = await DirectRunner().run(stand_in.request("[[chars:300000]]"), lambda _p: None)
    assert result.ok, result.error
    assert len(result.text) == 300_000


@pytest.mark.parametrize(
    ("directive", "kind"),
    [
        ("auth", "auth"),
        ("401", "auth"),
        ("429", "rate_limit"),
        ("500", "overloaded"),
        ("529", "overloaded"),
        ("usage", "usage_limit"),
        ("max_turns", "max_turns"),
        ("crash", "crash"),
        ("garbage", "crash"),
        ("empty", "empty"),
        ("partial", "crash"),
    ],
)
async def test_each_failure_of_the_cli_maps_to_its_error_kind(stand_in: StandIn, directive: str, kind: str) -> None:
    result = await DirectRunner().run(stand_in.request(f"go [[error:{directive}]]"), lambda _p: None)
    assert not result.ok
    assert result.error_kind == kind
    assert result.error


async def test_crash_error_quotes_the_stack_trace(stand_in: StandIn) -> None:
    result = await DirectRunner().run(stand_in.request("go [[error:crash]]"), lambda _p: None)
    assert result.exit_code == 2
    assert "TypeError" in result.stderr_tail
    assert result.error is not None and "TypeError" in result.error


async def test_ten_megabytes_of_junk_before_the_result_still_give_the_reply(stand_in: StandIn) -> None:
    result = await DirectRunner().run(stand_in.request("survive [[error:flood:10]]"), lambda _p: None)
    assert result.ok, result.error
    assert result.text == "[claude] survive"


async def test_timeout_kills_the_whole_process_group_including_an_orphan(stand_in: StandIn) -> None:
    clock = FakeClock()
    runner = DirectRunner(clock)
    _, started, on_progress = collect()
    task = asyncio.create_task(
        runner.run(stand_in.request("[[error:orphan]] [[error:hang]]", timeout_s=5.0), on_progress)
    )
    await asyncio.wait_for(started.wait(), 30)
    [orphan] = stand_in.orphan_pids()
    agent_pid = stand_in.invocations()[-1]["pid"]
    assert alive(orphan) and alive(agent_pid)
    assert runner.running == ["thread-1"]
    clock.advance(5.0)
    result = await asyncio.wait_for(task, 30)
    assert result.error_kind == "timeout"
    assert result.error == "Claude did not finish within 5 s; the run was stopped."
    assert result.session_id  # announced before the hang, so the session can be resumed
    assert await ended(orphan) and await ended(agent_pid)
    assert runner.running == []


async def test_real_time_timeout_falls_back_to_sigkill_for_a_process_that_ignores_sigterm(
    stand_in: StandIn,
) -> None:
    runner = DirectRunner(kill_grace_s=0.2)
    result = await runner.run(stand_in.request("[[error:stubborn]]", timeout_s=1.0), lambda _p: None)
    assert result.error_kind == "timeout"
    assert result.exit_code == -9
    assert await ended(stand_in.invocations()[-1]["pid"])


async def test_background_process_left_by_a_finished_run_is_ended(stand_in: StandIn) -> None:
    result = await DirectRunner().run(stand_in.request("all good [[error:orphan]]"), lambda _p: None)
    assert result.ok, result.error
    [orphan] = stand_in.orphan_pids()
    assert await ended(orphan)


async def test_cancel_stops_the_run_and_reports_cancelled(stand_in: StandIn) -> None:
    runner = DirectRunner()
    _, started, on_progress = collect()
    task = asyncio.create_task(runner.run(stand_in.request("[[error:hang]]"), on_progress))
    await asyncio.wait_for(started.wait(), 30)
    assert await runner.cancel("someone-else") is False
    assert await runner.cancel("thread-1") is True
    assert task.done()
    result = task.result()
    assert result.error_kind == "cancelled"
    assert await ended(stand_in.invocations()[-1]["pid"])


async def test_close_ends_every_live_run(stand_in: StandIn) -> None:
    runner = DirectRunner()
    tasks = []
    for key in ("a", "b"):
        _, started, on_progress = collect()
        tasks.append(asyncio.create_task(runner.run(stand_in.request("[[error:hang]]", key=key), on_progress)))
        await asyncio.wait_for(started.wait(), 30)
    await runner.close()
    results = await asyncio.gather(*tasks)
    assert [r.error_kind for r in results] == ["cancelled", "cancelled"]
    assert all([await ended(entry["pid"]) for entry in stand_in.invocations()])


async def test_cancelling_the_caller_task_still_kills_the_process(stand_in: StandIn) -> None:
    runner = DirectRunner()
    _, started, on_progress = collect()
    task = asyncio.create_task(runner.run(stand_in.request("[[error:orphan]] [[error:hang]]"), on_progress))
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await ended(stand_in.invocations()[-1]["pid"])
    assert await ended(stand_in.orphan_pids()[0])


async def test_missing_cli_on_path_is_reported(
    stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = await DirectRunner().run(stand_in.request("hi", command=("claude",)), lambda _p: None)
    assert result.error_kind == "missing_cli"
    assert result.error is not None and result.error.startswith("`claude` was not found on PATH")


async def test_the_cli_is_found_through_path(stand_in: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{stand_in.shim.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    result = await DirectRunner().run(stand_in.request("via path", command=("claude",)), lambda _p: None)
    assert result.ok and result.text == "[claude] via path"


async def test_a_missing_project_directory_is_a_clear_error(stand_in: StandIn, tmp_path: Path) -> None:
    result = await DirectRunner().run(stand_in.request("hi", cwd=tmp_path / "gone"), lambda _p: None)
    assert result.error_kind == "crash"
    assert result.error is not None and "does not exist" in result.error
    assert stand_in.invocations() == []


async def test_child_environment_has_no_gateway_secrets(stand_in: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "bot-token-value")
    monkeypatch.setenv("MPG_DASHBOARD_TOKEN", "dash-token-value")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    result = await DirectRunner().run(stand_in.request("hi"), lambda _p: None)
    assert result.ok
    names = stand_in.invocations()[-1]["env"]
    assert "DISCORD_BOT_TOKEN" not in names and "MPG_DASHBOARD_TOKEN" not in names
    assert "ANTHROPIC_API_KEY" in names and "CLAUDE_CONFIG_DIR" in names
    assert "bot-token-value" not in json.dumps(stand_in.invocations())


# -- the registry of live runs and the start-up sweep ---------------------------------------

# A gateway in a process of its own, to be SIGKILLed mid-run: says "started" once claude has.
_GATEWAY_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from mpg_tui.runners.direct import DirectRunner
from tests.unit.conftest import StandIn

spec = json.loads(sys.argv[1])
stand_in = StandIn(**{name: Path(value) for name, value in spec["stand_in"].items()})

def on_progress(progress):
    if progress.step == "init":
        print("started", flush=True)

runner = DirectRunner(registry_dir=Path(spec["registry"]), kill_grace_s=spec["kill_grace_s"])
asyncio.run(runner.run(stand_in.request(spec["prompt"]), on_progress))
"""


def registry_files(registry: Path) -> list[Path]:
    return sorted(registry.iterdir()) if registry.exists() else []


def record_of(registry: Path) -> RunRecord:
    [path] = registry_files(registry)
    return RunRecord.from_json(path.read_bytes())


def write_record(registry: Path, *, pid: int, key: str = "k", run_id: str | None = None, **fields: Any) -> Path:
    """A registry file as a killed gateway would have left it."""
    registry.mkdir(mode=0o700, exist_ok=True)
    run_id = run_id or secrets.token_hex(16)
    record = {"key": key, "pid": pid, "pgid": pid, "started_at": 1.0, "run_id": run_id, "start_ticks": None}
    record.update(fields)
    path = registry / f"{REGISTRY_PREFIX}{run_id}.json"
    path.write_text(json.dumps(record))
    return path


def start_ticks(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


@asynccontextmanager
async def lone_sleeper(env: dict[str, str] | None = None) -> AsyncIterator[int]:
    """A ``sleep`` leading a process group of its own, as a claude run would; killed after."""
    process = await asyncio.create_subprocess_exec(
        "sleep", "60", env={**os.environ, **(env or {})}, start_new_session=True
    )
    try:
        yield process.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


async def orphan_a_run(stand_in: StandIn, registry: Path, prompt: str) -> None:
    """Start a run in a gateway process, then SIGKILL that gateway: the run is left going."""
    spec = {
        "stand_in": {name: str(value) for name, value in dataclasses.asdict(stand_in).items()},
        "registry": str(registry),
        "kill_grace_s": 0.2,
        "prompt": prompt,
    }
    gateway = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _GATEWAY_SCRIPT, json.dumps(spec), stdout=asyncio.subprocess.PIPE, cwd=Path.cwd()
    )
    try:
        assert gateway.stdout is not None
        assert await asyncio.wait_for(gateway.stdout.readline(), 30) == b"started\n"
    finally:
        gateway.kill()
        await gateway.wait()


@pytest.mark.parametrize("how", ["exit", "timeout", "cancel", "close", "caller cancelled"])
async def test_a_live_run_is_registered_with_its_mark_and_unregistered_however_it_ends(
    stand_in: StandIn, tmp_path: Path, how: str
) -> None:
    clock = FakeClock()
    registry = tmp_path / "run"
    runner = DirectRunner(clock, registry_dir=registry)
    seen_during_run: list[RunRecord] = []
    started = asyncio.Event()

    def on_progress(progress: Progress) -> None:
        if progress.step == "init":
            seen_during_run.append(record_of(registry))
            started.set()

    prompt = "[[sleep:0.2]] done" if how == "exit" else "[[error:hang]]"
    task = asyncio.create_task(runner.run(stand_in.request(prompt, timeout_s=5.0), on_progress))
    await asyncio.wait_for(started.wait(), 30)
    [record] = seen_during_run
    pid = stand_in.invocations()[-1]["pid"]
    assert (record.key, record.pid, record.pgid) == ("thread-1", pid, pid)
    assert record.start_ticks == start_ticks(pid)
    assert f"{RUN_ID_ENV}={record.run_id}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert stat.S_IMODE(registry.stat().st_mode) == 0o700

    if how == "timeout":
        clock.advance(5.0)
    elif how == "cancel":
        await runner.cancel("thread-1")
    elif how == "close":
        await runner.close()
    elif how == "caller cancelled":
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 30)
    assert registry_files(registry) == []
    assert not alive(pid)


async def test_a_caller_cancelled_while_its_run_is_being_ended_leaves_the_ending_to_finish_and_unregister(
    stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = tmp_path / "run"
    runner = DirectRunner(kill_grace_s=0.5, registry_dir=registry)
    sigterm_sent = asyncio.Event()
    signal_group = process.signal_group

    def spy(pgid: int, sig: signal.Signals) -> None:
        signal_group(pgid, sig)
        if sig == signal.SIGTERM:
            sigterm_sent.set()

    monkeypatch.setattr(process, "signal_group", spy)
    _, started, on_progress = collect()
    task = asyncio.create_task(runner.run(stand_in.request("[[error:stubborn]]"), on_progress))
    await asyncio.wait_for(started.wait(), 30)
    stopping = asyncio.create_task(runner.cancel("thread-1"))
    await asyncio.wait_for(sigterm_sent.wait(), 30)  # the stubborn claude ignores it: SIGKILL is due
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(stopping, 30)
    assert await ended(stand_in.invocations()[-1]["pid"])
    assert registry_files(registry) == []


@pytest.mark.parametrize("failure", ["hang", "stubborn"])
async def test_sweep_ends_a_run_whose_gateway_was_sigkilled_with_everything_in_its_group(
    stand_in: StandIn, tmp_path: Path, failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    registry = tmp_path / "run"
    await orphan_a_run(stand_in, registry, f"[[error:orphan]] [[error:{failure}]]")
    agent_pid = stand_in.invocations()[-1]["pid"]
    [orphan] = stand_in.orphan_pids()
    assert alive(agent_pid) and alive(orphan)  # nobody left to end them

    with caplog.at_level(logging.WARNING, logger="mpg_tui.runners.run_registry"):
        assert await DirectRunner(kill_grace_s=0.2, registry_dir=registry).sweep_orphans() == ["thread-1"]
    assert not alive(agent_pid) and not alive(orphan)
    assert registry_files(registry) == []
    assert "ended claude left running by the previous gateway for thread-1" in caplog.messages


async def test_sweep_ends_a_group_whose_leader_is_gone_but_whose_children_carry_the_mark(tmp_path: Path) -> None:
    registry = tmp_path / "run"
    run_id = secrets.token_hex(16)
    # The leader starts a child in its group and exits, as claude does after its turn.
    leader = await asyncio.create_subprocess_exec(
        "sh",
        "-c",
        "sleep 60 >/dev/null & echo $!",
        env={**os.environ, RUN_ID_ENV: run_id},
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    out, _ = await leader.communicate()
    child = int(out)
    try:
        write_record(registry, pid=leader.pid, run_id=run_id, start_ticks=12345)
        assert await DirectRunner(registry_dir=registry).sweep_orphans() == ["k"]
        assert not alive(child)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


async def test_sweep_never_signals_a_process_without_the_runs_mark_and_drops_its_record(tmp_path: Path) -> None:
    registry = tmp_path / "run"
    async with lone_sleeper() as pid:
        path = write_record(registry, pid=pid, start_ticks=start_ticks(pid))
        assert await DirectRunner(kill_grace_s=0.2, registry_dir=registry).sweep_orphans() == []
        assert alive(pid)
        assert not path.exists()


async def test_sweep_never_signals_a_marked_group_whose_leader_started_at_another_time(tmp_path: Path) -> None:
    registry = tmp_path / "run"
    run_id = secrets.token_hex(16)
    async with lone_sleeper({RUN_ID_ENV: run_id}) as pid:
        write_record(registry, pid=pid, run_id=run_id, start_ticks=start_ticks(pid) - 1)
        assert await DirectRunner(registry_dir=registry).sweep_orphans() == []
        assert alive(pid)
        assert registry_files(registry) == []


async def test_sweep_signals_nothing_where_it_cannot_verify_and_drops_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = tmp_path / "run"
    run_id = secrets.token_hex(16)
    monkeypatch.setattr(process, "_PROC", tmp_path / "no-proc")
    async with lone_sleeper({RUN_ID_ENV: run_id}) as pid:
        write_record(registry, pid=pid, run_id=run_id)
        assert await DirectRunner(registry_dir=registry).sweep_orphans() == []
        assert alive(pid)
        assert registry_files(registry) == []


async def test_sweep_drops_records_of_runs_that_already_ended(tmp_path: Path) -> None:
    registry = tmp_path / "run"
    finished = await asyncio.create_subprocess_exec("true")
    await finished.wait()
    write_record(registry, pid=finished.pid)
    assert await DirectRunner(registry_dir=registry).sweep_orphans() == []
    assert registry_files(registry) == []


async def test_sweep_removes_unusable_records_and_half_written_files_and_leaves_other_files_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = tmp_path / "run"
    registry.mkdir()
    (registry / f"{REGISTRY_PREFIX}{'a' * 32}.json").write_text("{not json")
    write_record(registry, pid=1, run_id="b" * 32)  # would make killpg() reach init
    (registry / f"{REGISTRY_PREFIX}{'c' * 32}.json").write_text(
        json.dumps({"key": "k", "pid": 4242, "pgid": 4242, "started_at": 1, "run_id": "d" * 32})
    )
    (registry / f".{REGISTRY_PREFIX}{'e' * 32}.json.tmp").write_text("{")
    tmux_run = registry / "mpg-1001-0123456789"
    tmux_run.mkdir()
    with caplog.at_level(logging.WARNING, logger="mpg_tui.runners.run_registry"):
        assert await DirectRunner(registry_dir=registry).sweep_orphans() == []
    assert registry_files(registry) == [tmux_run]
    warnings = "\n".join(caplog.messages)
    assert "not JSON" in warnings and "pid is not a whole number of at least 2: 1" in warnings
    assert "does not match its name" in warnings


async def test_sweep_leaves_the_runners_own_live_runs_alone(stand_in: StandIn, tmp_path: Path) -> None:
    registry = tmp_path / "run"
    runner = DirectRunner(registry_dir=registry)
    _, started, on_progress = collect()
    task = asyncio.create_task(runner.run(stand_in.request("[[error:hang]]"), on_progress))
    await asyncio.wait_for(started.wait(), 30)
    assert await runner.sweep_orphans() == []
    assert runner.running == ["thread-1"] and len(registry_files(registry)) == 1
    await runner.cancel("thread-1")
    assert (await task).error_kind == "cancelled"


async def test_without_a_registry_nothing_is_written_and_the_sweep_is_a_no_op(stand_in: StandIn) -> None:
    runner = DirectRunner()
    result = await runner.run(stand_in.request("hi"), lambda _p: None)
    assert result.ok
    assert RUN_ID_ENV in stand_in.invocations()[-1]["env"]
    assert await runner.sweep_orphans() == []


async def test_an_unwritable_registry_costs_a_warning_not_the_run(
    stand_in: StandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with caplog.at_level(logging.WARNING, logger="mpg_tui.runners.run_registry"):
        result = await DirectRunner(registry_dir=blocked / "run").run(stand_in.request("hi"), lambda _p: None)
    assert result.ok and result.text == "[claude] hi"
    assert any("could not record it" in message for message in caplog.messages)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"key": ""}, "no session key"),
        ({"run_id": "../../etc"}, "no run id"),
        ({"pgid": 0}, "pgid is not a whole number of at least 2: 0"),
        ({"pid": True}, "pid is not a whole number"),
        ({"started_at": "yesterday"}, "no start time"),
        ({"start_ticks": -1}, "start_ticks is not a whole number"),
    ],
)
def test_a_registry_record_with_a_bad_field_is_refused_with_what_is_wrong(
    change: dict[str, object], problem: str
) -> None:
    good = {"key": "k", "pid": 10, "pgid": 10, "started_at": 1.5, "run_id": "f" * 32, "start_ticks": 7}
    assert RunRecord.from_json(json.dumps(good).encode()) == RunRecord("k", 10, 10, 1.5, "f" * 32, 7)
    with pytest.raises(ValueError, match=re.escape(problem)):
        RunRecord.from_json(json.dumps({**good, **change}).encode())
