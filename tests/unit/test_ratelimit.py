import pytest

from mpg_tui.core.clock import FakeClock
from mpg_tui.core.ratelimit import RateDecision, RateLimiter, rate_limited_text


def test_allows_up_to_the_limit_within_a_minute_then_refuses() -> None:
    limiter = RateLimiter(FakeClock())
    decisions = [limiter.check("p", "u", 3) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].retry_after_s == 60


def test_retry_after_counts_down_to_when_the_oldest_message_leaves_the_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    limiter.check("p", "u", 2)
    clock.advance(20)
    limiter.check("p", "u", 2)
    clock.advance(15.5)
    decision = limiter.check("p", "u", 2)
    assert decision == RateDecision(allowed=False, retry_after_s=25)  # 60 - 35.5, rounded up
    assert decision.reply == "You're sending messages too quickly. Please wait 25s before trying again."


def test_window_slides_so_old_messages_stop_counting() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    limiter.check("p", "u", 1)
    clock.advance(59)
    assert not limiter.check("p", "u", 1).allowed
    clock.advance(1)
    assert limiter.check("p", "u", 1).allowed


def test_refused_messages_are_not_counted() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    limiter.check("p", "u", 1)
    for _ in range(10):
        clock.advance(5)
        limiter.check("p", "u", 1)
    clock.advance(10)  # 60 s after the only accepted message
    assert limiter.check("p", "u", 1).allowed


def test_users_and_projects_have_separate_windows() -> None:
    limiter = RateLimiter(FakeClock())
    assert limiter.check("p", "alice", 1).allowed
    assert limiter.check("p", "bob", 1).allowed
    assert limiter.check("q", "alice", 1).allowed
    assert not limiter.check("p", "alice", 1).allowed


@pytest.mark.parametrize("limit", [None, 0, -1])
def test_no_limit_allows_everything_and_keeps_nothing(limit: int | None) -> None:
    limiter = RateLimiter(FakeClock())
    assert all(limiter.check("p", "u", limit).allowed for _ in range(100))
    assert len(limiter) == 0


def test_idle_windows_are_dropped_from_memory() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    for user in range(100):
        limiter.check("p", str(user), 5)
    assert len(limiter) == 100
    clock.advance(61)
    limiter.check("p", "late", 5)
    assert len(limiter) == 1


def test_reset_forgets_one_project_or_all() -> None:
    limiter = RateLimiter(FakeClock())
    limiter.check("p", "u", 1)
    limiter.check("q", "u", 1)
    limiter.reset("p")
    assert limiter.check("p", "u", 1).allowed
    assert not limiter.check("q", "u", 1).allowed
    limiter.reset()
    assert len(limiter) == 0


def test_allowed_decision_has_no_reply() -> None:
    assert RateDecision(allowed=True).reply is None
    assert rate_limited_text(7) == "You're sending messages too quickly. Please wait 7s before trying again."


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(FakeClock(), window_s=0)
