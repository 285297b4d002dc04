"""The whole message lifecycle on the real claude CLI, with chat kept in memory.

A human asks an agent, the agent hands off to another (each with its own system prompt
and session), and an API failure reaches the thread as a sentence a person can act on.
"""

from __future__ import annotations

import pytest

from mpg_tui.core.clock import SystemClock
from mpg_tui.core.embeds import agent_author
from mpg_tui.core.gateway import Gateway
from mpg_tui.core.ports import HistoryMessage, InboundMessage
from mpg_tui.core.runner import Runner
from mpg_tui.sandbox.inmemory import InMemoryChat
from tests.contract.conftest import CHANNEL, ClaudeWorld, MakeCore
from tests.contract.messages_api import ApiError, Text

pytestmark = pytest.mark.contract


class HistorylessChat(InMemoryChat):
    """The sandbox's in-memory chat with no thread history to read back.

    The test pins the exact prompts claude gets, which history would change: the handoff
    and the follow-up would reach claude behind a ``<thread-history>`` block.
    """

    async def history(self, channel_id: str, limit: int, before: str | None = None) -> list[HistoryMessage]:
        return []


async def test_an_agent_chain_runs_on_the_real_cli_and_an_api_error_reaches_the_thread(
    world: ClaudeWorld, runner: Runner, make_core: MakeCore
) -> None:
    core = make_core(runner, agents=["engineer", "qa"])
    engineer, qa = core.view.agent("engineer"), core.view.agent("qa")
    assert engineer is not None and qa is not None
    chat = HistorylessChat()
    gateway = Gateway(config=core.config, sessions=core.manager, bus=core.bus, clock=SystemClock(), chat=chat)
    world.api.script(
        Text("Login page built.\nHANDOFF @qa: test the login page"),
        Text("All login tests pass."),
        ApiError.for_status(429),
    )

    await gateway.handle_message(
        InboundMessage(
            id="1001", channel_id=CHANNEL, author_id="42", author_name="ana", content="@engineer build a login page"
        )
    )

    [thread] = chat.threads
    assert chat.texts(thread) == [
        "Login page built.\nHANDOFF @qa: test the login page",
        "Handing off to @qa...",
        "All login tests pass.",
    ]
    assert [post.embed.author for post in chat.posts if post.embed is not None] == [
        agent_author(engineer),
        agent_author(qa),
    ]
    to_engineer, to_qa = world.api.requests
    assert to_engineer.prompt == "build a login page"
    assert engineer.system_prompt in to_engineer.system_text and qa.system_prompt not in to_engineer.system_text
    assert qa.system_prompt in to_qa.system_text and engineer.system_prompt not in to_qa.system_text
    assert to_qa.prompt == "Login page built.\nHANDOFF @qa: test the login page"
    sessions = {info.key: info.session_id for info in core.manager.sessions()}
    assert set(sessions) == {f"{thread}:engineer", f"{thread}:qa"}
    assert len(set(sessions.values())) == 2  # one claude session per agent

    await gateway.handle_message(
        InboundMessage(
            id="1002", channel_id=thread, parent_channel_id=CHANNEL, author_id="42", author_name="ana", content="And?"
        )
    )

    assert chat.texts(thread)[-1] == (
        "**Error**: The Claude API is rate limiting this account (429); try again in a minute."
    )
    # The sticky agent (qa, who answered last) got the message, resuming its own session.
    assert world.api.requests[-1].user_prompts() == [to_qa.prompt, "And?"]
