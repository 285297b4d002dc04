"""The cockpit's wording of times, money, tokens, states and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpg_tui.tui import formatting as fmt


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(-3, "now"), (4.9, "now"), (5, "5s"), (59.9, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"), (86400 * 3, "3d")],
)
def test_age_is_compact_and_rounds_down(seconds: float, expected: str) -> None:
    assert fmt.age(seconds) == expected


def test_ago_says_now_without_a_suffix() -> None:
    assert fmt.ago(1) == "now"
    assert fmt.ago(125) == "2m ago"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.85, "850ms"), (12.34, "12.3s"), (245, "4m05s"), (7620, "2h07m")],
)
def test_duration(seconds: float, expected: str) -> None:
    assert fmt.duration(seconds) == expected


@pytest.mark.parametrize(("seconds", "expected"), [(45, "45s"), (720, "12m"), (7380, "2h 03m"), (273600, "3d 04h")])
def test_uptime(seconds: float, expected: str) -> None:
    assert fmt.uptime(seconds) == expected


@pytest.mark.parametrize(("usd", "expected"), [(0, "—"), (0.0412, "$0.041"), (9.5, "$9.500"), (1234.5, "$1,234.50")])
def test_cost(usd: float, expected: str) -> None:
    assert fmt.cost(usd) == expected


@pytest.mark.parametrize(("count", "expected"), [(0, "—"), (950, "950"), (12_400, "12.4k"), (3_100_000, "3.1M")])
def test_tokens(count: int, expected: str) -> None:
    assert fmt.tokens(count) == expected


def test_short_id_shows_a_prefix_or_a_dash() -> None:
    assert fmt.short_id("3f2a1b9c-7c1e-4b2a") == "3f2a1b9c"
    assert fmt.short_id(None) == "—"


def test_home_relative_only_rewrites_paths_under_home() -> None:
    home = str(Path.home())
    assert fmt.home_relative(f"{home}/src/app") == "~/src/app"
    assert fmt.home_relative(f"{home}-other/app") == f"{home}-other/app"
    assert fmt.home_relative("/srv/app") == "/srv/app"


def test_command_line_quotes_what_a_shell_would_split() -> None:
    line = fmt.command_line(["claude", "--resume", "abc"], "/srv/my project")
    assert line == "cd '/srv/my project' && claude --resume abc"


def test_truncate_flattens_whitespace_and_marks_the_cut() -> None:
    assert fmt.truncate("one\ntwo   three", 20) == "one two three"
    assert fmt.truncate("abcdefghij", 5) == "abcd…"


def test_state_text_colours_by_state_and_marks_failed_idle_sessions() -> None:
    assert fmt.state_text("running").plain == "● running"
    assert fmt.state_text("running").style == fmt.RUNNING
    failed = fmt.state_text("idle", failed=True)
    assert failed.plain == "✗ idle"
    assert fmt.state_text("running", failed=True).plain == "● running"
