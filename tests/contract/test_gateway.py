"""The whole message lifecycle on the real claude CLI, with chat kept in memory.

A human asks an agent, the agent hands off to another (each with its own system prompt
and session), and an API failure reaches the thread as a sentence a person can act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mpg_tui.core.clock import SystemClock
from mpg_tui.core.embeds import agent_author
from mpg_tui.core.gateway import Gateway
from mpg_tui.core.ports import (
    DEFAULT_UPLOAD_LIMIT,
    ApprovalCard,
    Attachment,
    ChatError,
    ChatPort,
    Embed,
    HistoryMessage,
    InboundMessage,
)
from mpg_tui.core.runner import Runner
from tests.contract.conftest import CHANNEL, ClaudeWorld, MakeCore
from tests.contract.messages_api import ApiError, Text

pytestmark = pytest.mark.contract


@dataclass
class Post:
    channel_id: str
    content: str | None
    embed: Embed | None

    @property
    def text(self) -> str:
        return self.embed.description if self.embed is not None else self.content or ""


@dataclass
class MemoryChat(ChatPort):
    """A :class:`~mpg_tui.core.ports.ChatPort` that keeps what the gateway posts."""

    posts: list[Post] = field(default_factory=list)
    threads: list[str] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(700_000_000_000_000_000))
    _post_ids: list[str] = field(default_factory=list)
    cards: list[tuple[str, ApprovalCard]] = field(default_factory=list)
    card_ids: dict[str, str] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)
    card_posted: asyncio.Event = field(default_factory=asyncio.Event)

    async def create_thread(self, channel_id: str, message_id: str, name: str, auto_archive_minutes: int = 1440) -> str:
        thread_id = str(next(self._ids))
        self.threads.append(thread_id)
        return thread_id

    async def send(self, channel_id: str, content: str | None = None, embed: Embed | None = None) -> str:
        self.posts.append(Post(channel_id, content, embed))
        message_id = str(next(self._ids))
        self._post_ids.append(message_id)
        return message_id

    async def edit(self, channel_id: str, message_id: str, content: str) -> None:
        return None

    async def delete(self, channel_id: str, message_id: str) -> None:
        self.deleted.add(message_id)

    async def react(self, channel_id: str, message_id: str, emoji: str) -> None:
        return None

    def typing(self, channel_id: str) -> AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()

    async def history(self, channel_id: str, limit: int, before: str | None = None) -> list[HistoryMessage]:
        return []

    async def download(self, attachment: Attachment, dest: Path) -> None:
        raise ChatError("no attachments here")

    async def send_file(self, channel_id: str, filename: str, data: bytes, content: str | None = None) -> str:
        return await self.send(channel_id, content)

    def upload_limit(self, channel_id: str) -> int:
        return DEFAULT_UPLOAD_LIMIT

    async def recent_messages(self, channel_id: str, limit: int, after: str | None = None) -> list[InboundMessage]:
        return []

    async def post_card(self, channel_id: str, card: ApprovalCard) -> str:
        self.cards.append((channel_id, card))
        message_id = str(next(self._ids))
        self.card_ids[card.request_id] = message_id
        self.card_posted.set()
        return message_id

    async def close_card(self, channel_id: str, message_id: str, card: ApprovalCard, verdict: str) -> None:
        self.verdicts[card.request_id] = verdict

    def thread_texts(self, thread_id: str) -> list[str]:
        """What stayed in the thread (status lines the gateway removed again left out)."""
        return [
            post.text
            for post, message_id in zip(self.posts, self._post_ids, strict=True)
            if post.channel_id == thread_id and message_id not in self.deleted
        ]


async def test_an_agent_chain_runs_on_the_real_cli_and_an_api_error_reaches_the_thread(
    world: ClaudeWorld, runner: Runner, make_core: MakeCore
) -> None:
    core = make_core(runner, agents=["engineer", "qa"])
    engineer, qa = core.view.agent("engineer"), core.view.agent("qa")
    assert engineer is not None and qa is not None
    chat = MemoryChat()
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
    assert chat.thread_texts(thread) == [
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

    assert chat.thread_texts(thread)[-1] == (
        "**Error**: The Claude API is rate limiting this account (429); try again in a minute."
    )
    # The sticky agent (qa, who answered last) got the message, resuming its own session.
    assert world.api.requests[-1].user_prompts() == [to_qa.prompt, "And?"]
