import pytest

from mpg_tui.core.turns import StickyAgents, TurnCounter, turn_limit_text


def test_chain_may_make_exactly_max_turns_handoffs() -> None:
    counter = TurnCounter()
    taken = [counter.try_take("t1", 3) for _ in range(5)]
    assert taken == [True, True, True, False, False]
    assert counter.turns("t1") == 3


def test_human_message_resets_the_count() -> None:
    counter = TurnCounter()
    for _ in range(3):
        counter.try_take("t1", 3)
    counter.reset("t1")
    assert counter.turns("t1") == 0
    assert counter.try_take("t1", 3)


def test_threads_are_counted_separately() -> None:
    counter = TurnCounter()
    counter.try_take("t1", 1)
    assert not counter.try_take("t1", 1)
    assert counter.try_take("t2", 1)


def test_reset_of_unknown_thread_is_harmless() -> None:
    TurnCounter().reset("nope")


def test_turn_limit_text_names_the_limit() -> None:
    assert turn_limit_text(5) == "⚠️ Agent turn limit reached (5) — send a message to reset."


def test_turn_counter_memory_is_bounded_oldest_first() -> None:
    counter = TurnCounter(max_threads=3)
    for thread in ["a", "b", "c", "d"]:
        counter.try_take(thread, 5)
    assert len(counter) == 3
    assert counter.turns("a") == 0
    assert counter.turns("d") == 1


def test_sticky_agent_is_the_last_one_that_answered() -> None:
    sticky = StickyAgents()
    assert sticky.get("t1") is None
    sticky.set("t1", "PM")
    sticky.set("t1", "engineer")
    assert sticky.get("t1") == "engineer"
    sticky.set("t2", "pm")
    assert sticky.get("t2") == "pm"


def test_forgotten_thread_has_no_sticky_agent() -> None:
    sticky = StickyAgents()
    sticky.set("t1", "pm")
    sticky.forget("t1")
    assert sticky.get("t1") is None


def test_sticky_memory_keeps_the_most_recently_used_threads() -> None:
    sticky = StickyAgents(max_threads=2)
    sticky.set("a", "pm")
    sticky.set("b", "pm")
    sticky.set("a", "qa")  # refreshes "a"
    sticky.set("c", "pm")
    assert len(sticky) == 2
    assert sticky.get("b") is None
    assert sticky.get("a") == "qa"


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        StickyAgents(max_threads=0)
