"""The spend ledger: allowances, the 80% warning, midnight, raising a limit, and the file it keeps."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

from mpg_tui.config import ProjectView, parse_config
from mpg_tui.core.budget import BudgetBook, HeldTurn, Stop
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.commands import parse_amount
from mpg_tui.core.events import RunFinished
from mpg_tui.core.turn_runner import cap_argument

MIDNIGHT = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def project(**limits: float) -> ProjectView:
    view = parse_config({"projects": {"100": {"directory": "/srv/a", **limits}}}).project("100")
    assert view is not None
    return view


def book(clock: FakeClock, path: Path | None = None) -> tuple[BudgetBook, EventBus]:
    bus = EventBus(clock)
    return BudgetBook(bus, clock, path, tz=UTC), bus


def spend(bus: EventBus, thread_id: str, cost: float) -> None:
    bus.publish(
        RunFinished(
            key=thread_id,
            project_key="100",
            thread_id=thread_id,
            agent=None,
            ok=True,
            session_id=None,
            reply_preview="",
            cost_usd=cost,
        )
    )


def test_the_cap_is_the_smallest_of_the_turn_limit_and_what_is_left() -> None:
    ledger, bus = book(FakeClock(MIDNIGHT + 3600))
    shop = project(maxTurnCostUsd=0.5, maxThreadCostUsd=2.0, dailyBudgetUsd=3.0)
    assert (ledger.allowance(shop, "t").cap_usd, ledger.allowance(shop, "t").capped_by) == (0.5, "turn")
    spend(bus, "t", 1.7)
    assert ledger.allowance(shop, "t").cap_usd == pytest.approx(0.3)
    assert ledger.allowance(shop, "t").capped_by == "thread"
    spend(bus, "u", 1.1)  # another thread of the same project, same day
    assert ledger.allowance(shop, "v").cap_usd == pytest.approx(0.2)
    assert ledger.allowance(shop, "v").capped_by == "day"


def test_warns_once_at_80_percent_and_stops_at_the_limit() -> None:
    ledger, bus = book(FakeClock(MIDNIGHT))
    shop = project(maxThreadCostUsd=1.0)
    spend(bus, "t", 0.81)
    assert [w.limit for w in ledger.review(shop, "t").warnings] == ["thread"]
    spend(bus, "t", 0.05)
    assert ledger.review(shop, "t").warnings == []
    spend(bus, "t", 0.2)
    assert ledger.review(shop, "t").stop == Stop("thread", pytest.approx(1.06), 1.0)
    assert ledger.allowance(shop, "t").stop is not None


def test_the_daily_budget_starts_afresh_at_local_midnight() -> None:
    clock = FakeClock(MIDNIGHT - 60)
    ledger, bus = book(clock)
    shop = project(dailyBudgetUsd=1.0)
    spend(bus, "t", 1.0)
    assert ledger.spent_limit(shop, "t") == Stop("day", 1.0, 1.0)
    clock.advance(61)
    assert ledger.today() == "2026-01-01"
    assert ledger.spent_limit(shop, "t") is None
    assert ledger.day_spent("100") == 0.0


def test_a_raise_allows_the_amount_more_than_is_spent_and_defaults_to_the_limit_again() -> None:
    ledger, bus = book(FakeClock(MIDNIGHT))
    shop = project(maxThreadCostUsd=1.0)
    spend(bus, "t", 1.3)
    assert ledger.raise_limit(shop, "t", 0.5).limits == [("thread", 1.8)]
    spend(bus, "t", 0.6)
    assert ledger.raise_limit(shop, "t", None).limits == [("thread", pytest.approx(2.9))]
    assert ledger.raise_limit(shop, "t", None).limits == []  # nothing is spent now


def test_spend_raises_and_pauses_with_their_kept_work_survive_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    clock = FakeClock(MIDNIGHT)
    ledger, bus = book(clock, path)
    shop = project(maxThreadCostUsd=1.0)
    spend(bus, "t", 1.2)
    ledger.hold(shop, "t", Stop("thread", 1.2, 1.0), HeldTurn("pm", "the prompt", "42"), requester_id="42")
    path.write_text(ledger.render(), encoding="utf-8")

    again, _ = book(clock, path)
    again.load()
    assert again.thread_spent("t") == 1.2 and again.day_spent("100") == 1.2
    pause = again.pause("t")
    assert pause is not None and pause.requester_id == "42"
    assert pause.held == [HeldTurn("pm", "the prompt", "42")]


def test_a_broken_ledger_is_set_aside_and_counting_starts_from_zero(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    path.write_text("{not json", encoding="utf-8")
    ledger, _ = book(FakeClock(MIDNIGHT), path)
    ledger.load()
    assert ledger.thread_spent("t") == 0.0
    assert [p.name.startswith("budget.json.corrupt-") for p in tmp_path.iterdir()] == [True]


@pytest.mark.parametrize(
    ("dollars", "argument"), [(0.5, "0.5"), (0.15000000001, "0.15"), (1.0, "1"), (0.0, "0.000001")]
)
def test_the_cap_reaches_claude_as_a_plain_decimal(dollars: float, argument: str) -> None:
    assert cap_argument(dollars) == argument


@pytest.mark.parametrize(("text", "amount"), [("", None), ("2", 2.0), ("$2.50", 2.5)])
def test_continue_amounts(text: str, amount: float | None) -> None:
    assert parse_amount(text) == amount


@pytest.mark.parametrize("text", ["0", "-1", "lots", "nan", "1e9"])
def test_continue_refuses_amounts_that_are_not_dollars(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)
