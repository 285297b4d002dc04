"""The gateway's totals (runs, failures, cost, tokens) as the cockpit header and dashboard show them."""

from __future__ import annotations

from pathlib import Path

from mpg_tui.config import parse_config
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.events import RunFinished, RunRecovering, RunStarted
from mpg_tui.core.gateway import Gateway
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.store import SessionStore
from tests.unit.fake_runner import FakeRunner


def make_gateway(tmp_path: Path) -> Gateway:
    config = parse_config({"projects": {"123456789012345678": {"directory": str(tmp_path)}}})
    clock, bus = FakeClock(), EventBus()
    sessions = SessionManager(
        config=config,
        store=SessionStore(tmp_path / "sessions.json", clock=clock),
        runners={"direct": FakeRunner()},
        bus=bus,
        clock=clock,
        worktrees=None,
    )
    return Gateway(config=config, sessions=sessions, bus=bus, clock=clock)


def finished(key: str, *, ok: bool, cost: float) -> RunFinished:
    return RunFinished(
        key=key,
        project_key="p",
        thread_id=key,
        agent=None,
        ok=ok,
        session_id=None,
        reply_preview="",
        cost_usd=cost,
        input_tokens=10,
        output_tokens=5,
    )


def test_totals_count_live_and_recovered_runs_alike(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    gateway.bus.publish(
        RunStarted(
            key="1",
            project_key="p",
            thread_id="1",
            agent=None,
            runner="direct",
            cwd="/",
            session_id=None,
            prompt_preview="",
        )
    )
    gateway.bus.publish(finished("1", ok=True, cost=0.25))
    gateway.bus.publish(RunRecovering(key="2", project_key="p", thread_id="2"))
    gateway.bus.publish(finished("2", ok=False, cost=0.5))

    totals = gateway.totals()
    assert (totals.runs, totals.failures) == (2, 1)
    assert totals.cost_usd == 0.75
    assert (totals.input_tokens, totals.output_tokens) == (20, 10)
