import pytest

from mpg_tui.config import Agent
from mpg_tui.core.embeds import (
    PALETTE,
    SESSION_CHANGED_NOTICE,
    SESSION_EXPIRED_NOTICE,
    agent_author,
    agent_color,
    agent_embeds,
    handoff_embed,
    handoff_text,
    is_notice,
    parse_author,
    queued_text,
    still_working_text,
)
from mpg_tui.core.ports import Embed
from mpg_tui.timefmt import format_duration

PM = Agent(name="pm", role="Product Manager", prompt="p")
ENGINEER = Agent(name="engineer", role="Software Engineer", prompt="e")


# Palette indexes produced by MPG's JavaScript `((h << 5) - h + ch.charCodeAt(0)) | 0`.
@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("pm", 1),
        ("engineer", 5),
        ("qa", 0),
        ("designer", 7),
        ("devops", 9),
        ("analyst", 2),
        ("a" * 40, 2),  # overflows 32 bits many times
        ("😀x", 7),  # astral character: JavaScript hashes its high surrogate
        ("Ω-lead", 2),
    ],
)
def test_agent_color_matches_mpg_hash(name: str, index: int) -> None:
    assert agent_color(name) == PALETTE[index]


def test_palette_has_ten_distinct_colours() -> None:
    assert len(set(PALETTE)) == 10


def test_short_reply_is_one_embed_with_role_and_name() -> None:
    [embed] = agent_embeds(PM, "Hello world")
    assert embed == Embed(description="Hello world", author="Product Manager · @pm", color=agent_color("pm"))


def test_long_reply_is_chunked_at_4096_with_cont_on_later_chunks() -> None:
    embeds = agent_embeds(ENGINEER, "A" * 9000)
    assert [len(e.description) for e in embeds] == [4096, 4096, 808]
    assert [e.author for e in embeds] == [
        "Software Engineer · @engineer",
        "Software Engineer · @engineer (cont.)",
        "Software Engineer · @engineer (cont.)",
    ]
    assert {e.color for e in embeds} == {agent_color("engineer")}


def test_empty_agent_reply_still_produces_a_visible_embed() -> None:
    [embed] = agent_embeds(PM, "  ")
    assert embed.description == "(empty response)"


def test_handoff_announcement_in_colour_of_agent_taking_over() -> None:
    embed = handoff_embed(ENGINEER)
    assert embed.description == "Handing off to **@engineer**..."
    assert embed.color == agent_color("engineer")
    assert handoff_text("engineer") == "Handing off to @engineer..."


@pytest.mark.parametrize(
    ("author", "role", "agent", "continued"),
    [
        ("Product Manager · @pm", "Product Manager", "pm", False),
        ("Product Manager · @pm (cont.)", "Product Manager", "pm", True),
        ("Product Manager", "Product Manager", None, False),  # MPG's own embeds
        ("Product Manager (cont.)", "Product Manager", None, True),
        ("Ops · @DevOps", "Ops", "devops", False),
    ],
)
def test_parse_author_reads_back_what_agent_author_writes(
    author: str, role: str, agent: str | None, continued: bool
) -> None:
    parsed = parse_author(author)
    assert (parsed.role, parsed.agent, parsed.continued) == (role, agent, continued)


def test_agent_author_round_trips() -> None:
    parsed = parse_author(agent_author(PM, continued=True))
    assert (parsed.role, parsed.agent, parsed.continued) == ("Product Manager", "pm", True)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "0s"),
        (0, "0s"),
        (59.9, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (3600, "1h 00m"),
        (7500, "2h 05m"),
        (90000, "1d 01h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_still_working_text_counts_whole_minutes() -> None:
    assert still_working_text(300) == "⏳ Still working… (5m elapsed)"
    assert still_working_text(659) == "⏳ Still working… (10m elapsed)"


@pytest.mark.parametrize(
    "text",
    [
        "👀",
        still_working_text(600),
        queued_text(3),
        "queued #2",
        handoff_text("pm"),
        "Handing off to **@engineer**...",
        SESSION_EXPIRED_NOTICE,
        "Previous session expired — starting fresh.",
        SESSION_CHANGED_NOTICE,
        "⚠️ Agent turn limit reached (5) — send a message to reset.",
        "**Error** (Alpha): boom",
    ],
)
def test_gateway_status_lines_are_notices(text: str) -> None:
    assert is_notice(text)


@pytest.mark.parametrize(
    "text",
    ["Here is the plan", "I queued the job", "The handoff to QA is next week", "Error handling is fine"],
)
def test_ordinary_replies_are_not_notices(text: str) -> None:
    assert not is_notice(text)
