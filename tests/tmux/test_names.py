"""Session keys become safe, distinct and stable tmux session names."""

from __future__ import annotations

import pytest

from mpg_tui.runners.names import PREFIX, is_session_name, session_name


@pytest.mark.parametrize(
    "key",
    ["1234567890123456789", "1234567890123456789:engineer", "1:a.b", "-1:$(rm -rf /)", "thread:ingénieur 🛠", "x" * 500],
)
def test_names_hold_only_characters_tmux_takes_literally(key: str) -> None:
    name = session_name(key)

    assert name.startswith(PREFIX)
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
    assert len(name) <= 64
    assert is_session_name(name)


def test_names_keep_the_key_readable() -> None:
    assert session_name("1234:engineer").startswith("mpg-1234_engineer-")


def test_keys_that_sanitise_alike_still_get_different_names() -> None:
    keys = ["1:a", "1_a", "1.a", "1 a", "1:A", "x" * 100 + "1", "x" * 100 + "2"]

    assert len({session_name(key) for key in keys}) == len(keys)


def test_the_same_key_always_gets_the_same_name() -> None:
    assert session_name("42:pm") == session_name("42:pm") == "mpg-42_pm-" + session_name("42:pm")[-10:]


def test_a_key_with_nothing_readable_is_named_by_its_hash_alone() -> None:
    name = session_name("::")

    assert name.startswith(PREFIX) and len(name) == len(PREFIX) + 10
    assert is_session_name(name)


def test_other_names_are_not_taken_for_ours() -> None:
    for name in ["operator", "mpg-", "mpg-notahash", "mpg-1234_pm-ABCDEF0123", "0", "mpg-1:2-0123456789"]:
        assert not is_session_name(name), name


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        session_name("")
