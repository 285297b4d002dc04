"""In-memory adapters for the core: a chat that keeps every post, and a runner scripted run by run.

:class:`InMemoryChat` implements :class:`~mpg_tui.core.ports.ChatPort` with lists and a
counter: threads open on the message that started them (their ID is the message's, as
on Discord), posts are kept per channel and read back as history; a channel can refuse
posts (a locked thread), and messages members posted while the gateway was away can be
put in place for catch-up to find. :class:`ScriptedRunner`
implements :class:`~mpg_tui.core.runner.Runner` without starting a process: each run
either plays a result queued for it at once, or stays open as a :class:`LiveRun` that the
caller feeds progress to and finishes with a given cost, reply or error.

Together with the real gateway they make the world the faces' tests, the benchmarks and
the screenshot script show (see :mod:`mpg_tui.sandbox.world`), so no picture of a face
shows a state the core cannot reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpg_tui.core.clock import Clock
from mpg_tui.core.events import RunnerKind
from mpg_tui.core.permissions import PermissionDecision, PermissionRequest
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
from mpg_tui.core.runner import (
    INTERRUPTED_ERROR,
    ErrorKind,
    Progress,
    ProgressCallback,
    Runner,
    RunRequest,
    RunResult,
    Usage,
)
from mpg_tui.runners.names import session_name

CANCELLED_ERROR = "Cancelled."
TMUX_SOCKET = "mpg-sandbox"
"""The tmux server the scripted runner's tmux-backed runs claim to live on."""
BOT_NAME = "mpg"


@dataclass(frozen=True)
class Post:
    """One message the gateway posted."""

    id: str
    channel_id: str
    content: str | None
    embed: Embed | None = None
    filename: str | None = None
    data: bytes = b""
    card: ApprovalCard | None = None
    """The approval card this post is, if it is one."""

    @property
    def text(self) -> str:
        """What a reader sees: the content, or an agent embed's description."""
        return self.content or (self.embed.description if self.embed is not None else "")


class InMemoryChat(ChatPort):
    """A chat server in a few dicts: what the gateway posts is kept, and read back as history."""

    def __init__(
        self,
        first_id: int = 1_500_000_000_000_000_000,
        *,
        upload_limit_bytes: int = DEFAULT_UPLOAD_LIMIT,
        refused: Iterable[str] = (),
    ) -> None:
        self._ids = itertools.count(first_id)
        self._upload_limit = upload_limit_bytes
        self.refused = set(refused)
        """Channels whose posts are refused with a 403, as a locked thread's are."""
        self.posts: list[Post] = []
        self.deleted: set[str] = set()
        """IDs of posts the gateway deleted again (status lines)."""
        self.threads: dict[str, tuple[str, str]] = {}
        """Thread ID -> (channel ID, name)."""
        self.reactions: list[tuple[str, str, str]] = []
        self.cards: dict[str, tuple[str, str | None]] = {}
        """Approval cards by request ID: (message ID, the verdict once closed)."""
        self.card_posted = asyncio.Event()
        """Set when a card is posted; whoever waits for the next one clears it."""
        self.missed: dict[str, list[InboundMessage]] = {}
        """Members' messages by channel that arrived while the gateway was away, oldest first."""
        self.reads: list[tuple[str, str | None]] = []
        """Catch-up's reads of :attr:`missed`: (channel ID, the ID it read after)."""
        self._history: dict[str, list[HistoryMessage]] = {}

    def next_id(self) -> str:
        return str(next(self._ids))

    def remember(self, channel_id: str, message: HistoryMessage) -> None:
        """Keep a member's message for the channel's history (the gateway reads it for handoffs)."""
        self._history.setdefault(channel_id, []).append(message)

    def posted_in(self, channel_id: str) -> list[Post]:
        return [post for post in self.posts if post.channel_id == channel_id]

    def texts(self, channel_id: str) -> list[str]:
        """What is still to be read in the channel, oldest first: posts deleted again are left out."""
        return [post.text for post in self.posted_in(channel_id) if post.id not in self.deleted]

    def last_card(self) -> tuple[str, ApprovalCard]:
        """The channel and card of the newest approval card posted."""
        channel_id, card = next((p.channel_id, p.card) for p in reversed(self.posts) if p.card is not None)
        return channel_id, card

    def _post(self, post: Post) -> str:
        if post.channel_id in self.refused:
            raise ChatError("Missing Permissions", status=403)
        self.posts.append(post)
        return post.id

    # -- ChatPort ---------------------------------------------------------------------------

    async def create_thread(self, channel_id: str, message_id: str, name: str, auto_archive_minutes: int = 1440) -> str:
        if message_id in self.threads:
            raise ChatError("a thread already exists for this message", status=400)
        self.threads[message_id] = (channel_id, name)
        return message_id

    async def send(self, channel_id: str, content: str | None = None, embed: Embed | None = None) -> str:
        post_id = self._post(Post(self.next_id(), channel_id, content, embed))
        embeds = (embed,) if embed is not None else ()
        self.remember(channel_id, HistoryMessage(BOT_NAME, content or "", is_bot=True, embeds=embeds))
        return post_id

    async def edit(self, channel_id: str, message_id: str, content: str) -> None:
        return None

    async def delete(self, channel_id: str, message_id: str) -> None:
        self.deleted.add(message_id)

    async def react(self, channel_id: str, message_id: str, emoji: str) -> None:
        self.reactions.append((channel_id, message_id, emoji))

    @contextlib.asynccontextmanager
    async def typing(self, channel_id: str) -> AsyncIterator[None]:
        yield

    async def history(self, channel_id: str, limit: int, before: str | None = None) -> list[HistoryMessage]:
        return self._history.get(channel_id, [])[-limit:] if limit > 0 else []

    async def download(self, attachment: Attachment, dest: Path) -> None:
        raise ChatError("the in-memory chat holds no attachments", status=404)

    async def send_file(self, channel_id: str, filename: str, data: bytes, content: str | None = None) -> str:
        return self._post(Post(self.next_id(), channel_id, content, filename=filename, data=data))

    def upload_limit(self, channel_id: str) -> int:
        return self._upload_limit

    async def post_card(self, channel_id: str, card: ApprovalCard) -> str:
        post_id = self._post(Post(self.next_id(), channel_id, card.text, card=card))
        self.cards[card.request_id] = (post_id, None)
        self.card_posted.set()
        return post_id

    async def close_card(self, channel_id: str, message_id: str, card: ApprovalCard, verdict: str) -> None:
        self.cards[card.request_id] = (message_id, verdict)

    async def recent_messages(self, channel_id: str, limit: int, after: str | None = None) -> list[InboundMessage]:
        # Members' messages usually reach the gateway live (handle_message): only what was
        # put in ``missed`` is there to catch up on.
        self.reads.append((channel_id, after))
        found = [m for m in self.missed.get(channel_id, []) if after is None or int(m.id) > int(after)]
        return found[-limit:]


@dataclass(eq=False)
class LiveRun:
    """A run the :class:`ScriptedRunner` holds open until it is finished (or cancelled)."""

    request: RunRequest
    started_at: float
    """The runner clock's monotonic time when the run began (for its duration)."""
    _on_progress: ProgressCallback
    _clock: Clock
    _fresh_session_id: Callable[[], str]
    _result: asyncio.Future[RunResult] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    _asked: int = 0

    @property
    def key(self) -> str:
        return self.request.key

    @property
    def done(self) -> bool:
        return self._result.done()

    def ask(self, tool: str, tool_input: Mapping[str, Any]) -> asyncio.Task[PermissionDecision]:
        """Claude asks a person before using ``tool`` (as over the CLI's ``can_use_tool``); the
        task ends with the decision. Raises RuntimeError when the run has no way to ask."""
        ask = self.request.ask_permission
        if ask is None:
            raise RuntimeError(f"run {self.key} cannot ask: approvals are not relayed for it")
        self._asked += 1
        request = PermissionRequest.from_tool_call(tool, tool_input, f"toolu_sandbox{self._asked:04d}")
        return asyncio.ensure_future(ask(request))

    def progress(self, text: str, tool: str | None = None) -> None:
        """Report a line of progress, as claude's stream would: a tool call, or text."""
        self._on_progress(Progress(step="tool" if tool else "text", text=text, tool=tool))

    def finish(
        self,
        text: str = "Done.",
        *,
        cost_usd: float = 0.01,
        input_tokens: int = 1200,
        output_tokens: int = 300,
        session_id: str | None = None,
    ) -> None:
        """End the run with claude's reply ``text``; keeps (or else makes up) the claude session ID."""
        self.end(
            RunResult(
                ok=True,
                text=text,
                session_id=session_id or self.request.session_id or self._fresh_session_id(),
                cost_usd=cost_usd,
                usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
                duration_ms=self._elapsed_ms(),
                num_turns=1,
            )
        )

    def fail(
        self,
        error: str,
        *,
        kind: ErrorKind = "api",
        cost_usd: float = 0.0,
        input_tokens: int = 0,
        output_tokens: int = 0,
        session_id: str | None = None,
    ) -> None:
        """End the run as claude failing with ``error`` (what it cost so far is still counted)."""
        self.end(
            RunResult(
                ok=False,
                error=error,
                error_kind=kind,
                session_id=session_id or self.request.session_id,
                cost_usd=cost_usd,
                usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
                duration_ms=self._elapsed_ms(),
            )
        )

    def end(self, result: RunResult) -> None:
        if not self._result.done():
            self._result.set_result(result)

    def _elapsed_ms(self) -> int:
        return int((self._clock.monotonic() - self.started_at) * 1000)


class ScriptedRunner(Runner):
    """Runs nothing: each run plays a queued result at once, or waits, held open, to be finished.

    With ``kind="tmux"`` it also names the tmux session a key would run in, as the tmux
    runner does, so a face shows what it would for a tmux-backed run.
    """

    def __init__(self, kind: RunnerKind, clock: Clock) -> None:
        self.kind: RunnerKind = kind
        self._clock = clock
        self.requests: list[RunRequest] = []
        self.acknowledged: list[str] = []
        self.released: list[str] = []
        self._planned: dict[str, deque[RunResult]] = {}
        self._live: dict[str, LiveRun] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._session_numbers = itertools.count(1)
        self.hold = True
        """Hold each run open until finished; when False, a run that was not planned answers at once."""

    # -- scripting --------------------------------------------------------------------------

    def plan(self, key: str, result: RunResult) -> None:
        """The next run of ``key`` ends at once with ``result`` instead of being held open."""
        self._planned.setdefault(key, deque()).append(result)

    def live(self, key: str) -> LiveRun:
        """The run of ``key`` being held open. Raises KeyError if there is none."""
        return self._live[key]

    @property
    def running(self) -> list[str]:
        return list(self._live)

    async def started(self, key: str, timeout: float = 5.0) -> LiveRun:
        """Wait until a run of ``key`` is held open; fails fast rather than hanging a test."""
        async with asyncio.timeout(timeout):
            while key not in self._live:
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                await waiter
        return self._live[key]

    # -- the runner port's abilities -----------------------------------------------------------

    @property
    def runs_outlive_gateway(self) -> bool:
        return self.kind == "tmux"

    def tmux_session(self, key: str) -> str | None:
        return session_name(key) if self.kind == "tmux" else None

    def attach_command(self, key: str) -> list[str] | None:
        return ["tmux", "-L", TMUX_SOCKET, "attach", "-t", session_name(key)] if self.kind == "tmux" else None

    async def acknowledge(self, key: str) -> None:
        self.acknowledged.append(key)

    async def release(self, key: str) -> None:
        self.released.append(key)

    # -- Runner -----------------------------------------------------------------------------

    async def run(self, request: RunRequest, on_progress: ProgressCallback) -> RunResult:
        self.requests.append(request)
        planned = self._planned.get(request.key)
        if planned:
            return planned.popleft()
        if not self.hold:
            return RunResult(
                ok=True,
                text="Done.",
                session_id=request.session_id or self._fresh_session_id(),
                cost_usd=0.01,
                usage=Usage(input_tokens=1200, output_tokens=300),
                num_turns=1,
            )
        run = LiveRun(request, self._clock.monotonic(), on_progress, self._clock, self._fresh_session_id)
        self._live[request.key] = run
        self._notify()
        try:
            return await asyncio.shield(run._result)
        finally:
            if self._live.get(request.key) is run:
                del self._live[request.key]

    async def cancel(self, key: str) -> bool:
        run = self._live.get(key)
        if run is None:
            return False
        run.end(RunResult(ok=False, error=CANCELLED_ERROR, error_kind="cancelled", session_id=run.request.session_id))
        return True

    async def interrupt(self, key: str) -> bool:
        """As a live claude asked to stop: the held run ends as ``interrupted``; the session goes on."""
        run = self._live.get(key)
        if run is None:
            return False
        run.end(
            RunResult(ok=False, error=INTERRUPTED_ERROR, error_kind="interrupted", session_id=run.request.session_id)
        )
        return True

    async def close(self) -> None:
        if self.kind == "tmux":
            return  # tmux runs outlive the gateway
        for key in list(self._live):
            await self.cancel(key)

    def _fresh_session_id(self) -> str:
        """A UUID-shaped claude session ID, numbered in the order sessions start (stable pictures)."""
        return session_uuid((0x200 if self.kind == "tmux" else 0x100) + next(self._session_numbers))

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def session_uuid(n: int) -> str:
    """The ``n``-th UUID-shaped claude session ID."""
    return f"{n:08x}-7c1e-4b2a-9f00-{n:012x}"
