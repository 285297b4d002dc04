import asyncio

from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.events import ConnectionChanged, SessionKilled


async def test_subscriber_receives_only_the_kinds_it_asked_for() -> None:
    bus = EventBus()
    with bus.subscribe(SessionKilled) as sub:
        bus.publish(ConnectionChanged(state="ready"))
        bus.publish(SessionKilled(key="1", project_key="p"))
        event = await asyncio.wait_for(sub.get(), 1)
        assert isinstance(event, SessionKilled)
        assert sub.queue.empty()


async def test_slow_subscriber_drops_oldest_and_publisher_never_blocks() -> None:
    bus = EventBus()
    sub = bus.subscribe(maxsize=2)
    for i in range(5):
        bus.publish(SessionKilled(key=str(i), project_key="p"))
    assert sub.dropped == 3
    assert [(await sub.get()).key for _ in range(2)] == ["3", "4"]  # type: ignore[attr-defined]


def test_listener_failure_does_not_stop_publishing() -> None:
    bus = EventBus()
    seen: list[str] = []

    def broken(_e: object) -> None:
        raise RuntimeError("boom")

    bus.listen(broken)
    bus.listen(lambda e: seen.append(e.kind))
    bus.publish(ConnectionChanged(state="ready"))
    assert seen == ["connection_changed"]


def test_fake_clock_fires_timers_in_order_and_skips_cancelled() -> None:
    clock = FakeClock()
    fired: list[str] = []
    clock.call_later(10, lambda: fired.append("b"))
    clock.call_later(5, lambda: fired.append("a"))
    clock.call_later(7, lambda: fired.append("x")).cancel()
    clock.advance(6)
    assert fired == ["a"]
    clock.advance(4)
    assert fired == ["a", "b"]
    assert clock.monotonic() == 10


def test_event_to_dict_names_its_kind() -> None:
    data = SessionKilled(key="k", project_key="p", at=1.0).to_dict()
    assert data == {"kind": "session_killed", "key": "k", "project_key": "p", "kept_branch": None, "at": 1.0}
