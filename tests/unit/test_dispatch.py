import pytest

from mpg_tui.config import Agent, resolve_agents
from mpg_tui.core.dispatch import (
    AgentTarget,
    UnknownAgent,
    detect_handoff,
    find_mention,
    parse_agent_command,
    resolve_target,
    session_key,
    unknown_agent_text,
)

AGENTS = resolve_agents(["pm", "engineer", "qa"])
NO_AGENTS: dict[str, Agent] = {}


def custom(**roles: str) -> dict[str, Agent]:
    return {name: Agent(name=name, role=role, prompt="") for name, role in roles.items()}


def target(text: str, sticky: str | None = None, agents: dict[str, Agent] = AGENTS) -> AgentTarget:
    result = resolve_target(text, agents, sticky=sticky)
    assert isinstance(result, AgentTarget)
    return result


def test_session_keys() -> None:
    assert session_key("123", None) == "123"
    assert session_key("123", "pm") == "123:pm"
    assert target("@pm hi").session_key("123") == "123:pm"
    assert target("hi").session_key("123") == "123"


@pytest.mark.parametrize(
    ("text", "agent", "prompt"),
    [
        ("!ask pm write the spec", "pm", "write the spec"),
        ("!ASK Engineer fix it", "engineer", "fix it"),
        ("!ask qa\nline one\nline two", "qa", "line one\nline two"),
        ("!pm write the spec", "pm", "write the spec"),
        ("!Engineer   fix   it", "engineer", "fix   it"),
        ("!ask pm", "pm", ""),
    ],
)
def test_agent_commands_pick_the_agent_and_strip_the_command(text: str, agent: str, prompt: str) -> None:
    result = target(text)
    assert (result.agent_name, result.prompt, result.via) == (agent, prompt, "command")


def test_ask_with_unknown_agent_is_reported() -> None:
    assert resolve_target("!ask ceo decide", AGENTS) == UnknownAgent("ceo")
    assert resolve_target("!ask", AGENTS) == UnknownAgent("")


def test_unknown_agent_reply_lists_agents() -> None:
    assert unknown_agent_text("ceo", AGENTS) == (
        "Unknown agent `ceo`. Available agents:\n"
        "- `pm` — Product Manager\n"
        "- `engineer` — Software Engineer\n"
        "- `qa` — QA Engineer\n\n"
        "Usage: `!ask <agent> <message>`"
    )
    assert unknown_agent_text("ceo", NO_AGENTS) == "Unknown agent `ceo` — this project has no agents configured."


def test_builtin_command_names_win_over_agent_names() -> None:
    agents = custom(help="Helper", pm="Product Manager")
    assert parse_agent_command("!help me", agents) is None
    assert parse_agent_command("!ask help me", agents) == AgentTarget(agents["help"], "me", "command")


@pytest.mark.parametrize("text", ["!deploy now", "!asking around", "!", "hello !pm", "!!pm hi"])
def test_other_bang_words_are_not_agent_commands(text: str) -> None:
    assert parse_agent_command(text, AGENTS) is None


@pytest.mark.parametrize(
    ("text", "agent", "prompt"),
    [
        ("@pm fix the login bug", "pm", "fix the login bug"),
        ("@PM: fix it", "pm", "fix it"),
        ("  @engineer, please look", "engineer", "please look"),
        ("@qa\nsteps:\n1. open", "qa", "steps:\n1. open"),
    ],
)
def test_leading_mention_targets_and_is_stripped(text: str, agent: str, prompt: str) -> None:
    result = target(text)
    assert (result.agent_name, result.prompt, result.via) == (agent, prompt, "mention")


def test_mention_in_the_middle_targets_but_stays_in_the_prompt() -> None:
    result = target("can @engineer look at the login page?")
    assert (result.agent_name, result.prompt) == ("engineer", "can @engineer look at the login page?")


def test_first_mention_wins() -> None:
    assert target("ask @qa then @pm").agent_name == "qa"


@pytest.mark.parametrize(
    "text",
    [
        "mail a@pm.com about it",
        "ping <@123> please",
        "ping <@!456> and <@&789>",
        "@pmx is not an agent",
        "@pm-lead is not an agent",
        "@@pm twice",
        "no mention here",
        "user_@qa name",
    ],
)
def test_non_mentions_do_not_target(text: str) -> None:
    assert find_mention(text, AGENTS) is None
    assert target(text).via == "default"


def test_mention_of_longer_agent_name_is_not_read_as_shorter_one() -> None:
    agents = {**custom(pm="Product Manager"), "pm-lead": Agent(name="pm-lead", role="Lead PM", prompt="")}
    assert target("@pm-lead decide", agents=agents).agent_name == "pm-lead"
    assert target("@pm decide", agents=agents).agent_name == "pm"


def test_mention_followed_by_punctuation_still_counts() -> None:
    assert target("thanks @pm.").agent_name == "pm"
    assert target("(@qa) check").agent_name == "qa"


def test_sticky_agent_takes_plain_follow_ups() -> None:
    result = target("and the tests?", sticky="engineer")
    assert (result.agent_name, result.prompt, result.via) == ("engineer", "and the tests?", "sticky")


def test_explicit_target_beats_sticky() -> None:
    assert target("@qa check", sticky="engineer").agent_name == "qa"
    assert target("!pm check", sticky="engineer").agent_name == "pm"


def test_sticky_agent_no_longer_configured_falls_back_to_default() -> None:
    result = target("hello", sticky="designer")
    assert (result.agent, result.via) == (None, "default")


def test_without_agents_everything_goes_to_the_default_session() -> None:
    result = target("@pm hello", sticky="pm", agents=NO_AGENTS)
    assert (result.agent, result.prompt, result.via) == (None, "@pm hello", "default")
    assert resolve_target("!ask pm hi", NO_AGENTS) == UnknownAgent("pm")


# Handoffs


@pytest.mark.parametrize(
    ("reply", "agent", "task"),
    [
        ("Spec done.\nHANDOFF @engineer: implement login", "engineer", "implement login"),
        ("handoff @Engineer:implement login\nmore text", "engineer", "implement login"),
        ("Plan:\n  **HANDOFF @qa:** verify the flow", "qa", "verify the flow"),
        ("> HANDOFF @qa: verify", "qa", "verify"),
        ("@engineer please implement login\nDetails follow", "engineer", "please implement login"),
        ("  @qa: verify it", "qa", "verify it"),
    ],
)
def test_handoff_is_detected(reply: str, agent: str, task: str) -> None:
    handoff = detect_handoff(reply, AGENTS, current="pm")
    assert handoff is not None
    assert (handoff.agent.name, handoff.task, handoff.prompt, handoff.is_self) == (agent, task, reply, False)


@pytest.mark.parametrize(
    "reply",
    [
        "Once approved, I'll hand off to @engineer.",
        "Mail bob@engineer.com",
        "HANDOFF @ceo: decide",
        "HANDOFF engineer: no at sign",
        "HANDOFF @engineer without colon",
        "The HANDOFF @engineer: line must start the line",
        "All done, nothing to hand off.",
    ],
)
def test_no_handoff(reply: str) -> None:
    assert detect_handoff(reply, AGENTS, current="pm") is None


def test_unknown_agent_line_is_skipped_for_a_known_one() -> None:
    handoff = detect_handoff("HANDOFF @ceo: x\nHANDOFF @qa: y", AGENTS, current="pm")
    assert handoff is not None and handoff.agent.name == "qa"


def test_self_handoff_is_reported() -> None:
    handoff = detect_handoff("HANDOFF @pm: think more", AGENTS, current="pm")
    assert handoff is not None and handoff.is_self
    leading = detect_handoff("@PM let me think", AGENTS, current="pm")
    assert leading is not None and leading.is_self


def test_handoff_to_another_agent_wins_over_self_handoff() -> None:
    handoff = detect_handoff("HANDOFF @pm: me\nHANDOFF @engineer: you", AGENTS, current="pm")
    assert handoff is not None
    assert (handoff.agent.name, handoff.is_self) == ("engineer", False)


def test_default_session_reply_can_hand_off() -> None:
    handoff = detect_handoff("HANDOFF @pm: review", AGENTS, current=None)
    assert handoff is not None and not handoff.is_self


def test_no_agents_no_handoff() -> None:
    assert detect_handoff("HANDOFF @pm: x", NO_AGENTS, current=None) is None
