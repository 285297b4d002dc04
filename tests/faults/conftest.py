"""Fixtures for the fault and abuse suite: whole gateways against the sandbox, in this process.

Most faults are exercised on an in-process gateway: the real :class:`~mpg_tui.runtime.Runtime`
(discord.py on the sandbox, the direct runner, the stand-in ``claude``, the store on disk)
running in the test's event loop, which starts in well under a second and lets a test
reach into it (the bus, the store's file system calls). Faults that are about the process
itself (signals, restarts, its log file) use the real ``mpg-tui --no-ui`` process from
:mod:`tests.e2e.gateway_process`.

Every test gets its own sandbox and its own profile under ``tmp_path``; nothing is shared,
so a fault injected by one test cannot leak into another.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mpg_tui.config import load_config
from mpg_tui.core.events import Event
from mpg_tui.discord_adapter.endpoint import restore_discord_endpoints
from mpg_tui.runtime import Runtime, RuntimeSettings
from mpg_tui.sandbox.discord import Action, SandboxServer, SandboxSpec
from tests.e2e.gateway_process import WAIT_S, Chat, Posted, Profile, write_profile

TOKEN = "faults-bot-token-7c1d2e9f4a6b8053"  # valid only on the loopback sandbox
READY_TIMEOUT_S = 30.0
ERROR_PREFIX = "**Error**: "

E = TypeVar("E", bound=Event)
Channels = Mapping[str, Mapping[str, Any]]
"""Channel name -> extra ``projects.<id>`` keys for the project mapped to it."""


def sandbox_spec(channels: Channels, unmapped: tuple[str, ...] = ()) -> SandboxSpec:
    """One channel per project (plus unmapped ones); alice is a developer, bob has no role."""
    return SandboxSpec.default(
        [*channels, *unmapped],
        roles=("developer",),
        users={"alice": ["developer"], "bob": []},
        token=TOKEN,
    )


def profile_for(sandbox: SandboxServer, root: Path, channels: Channels, defaults: Mapping[str, Any]) -> Profile:
    return write_profile(
        root,
        api_base=sandbox.api_base,
        token=sandbox.token,
        projects={sandbox.spec.channel(name).id: (name, options) for name, options in channels.items()},
        defaults=defaults,
    )


@dataclass
class World:
    """A sandbox, the profile written for it and a gateway serving it in this process."""

    sandbox: SandboxServer
    profile: Profile
    runtime: Runtime
    chat: Chat

    def channel(self, name: str) -> str:
        return self.chat.channel(name)

    async def ask(self, channel: str, content: str, *, user: str = "alice") -> tuple[Posted, str]:
        """Post in a channel; the message and the thread the bot opened for it."""
        posted = await self.chat.post(self.channel(channel), content, user=user)
        return posted, await self.chat.thread_for(posted)

    async def error_in(self, thread_id: str, after: int) -> Action:
        """The bot's ``**Error**:`` message in a thread."""
        return await self.chat.sent_starting(thread_id, ERROR_PREFIX, after)

    def bot_messages(self, channel_id: str, after: int = 0) -> list[str]:
        """What the bot posted in a channel (not edits, not deletions), oldest first."""
        return [a.text for a in self.chat.actions_in(channel_id, after) if a.kind == "message_sent"]

    def once(self, kind: type[E], action: Callable[[E], object], where: Callable[[E], bool] = lambda _e: True) -> None:
        """Do ``action`` inside the gateway, synchronously, the first time an event of ``kind`` is published.

        This is how a test lands a fault at an exact point of a run (just started; just
        finished, its reply not yet posted), however slow the machine is.
        """

        def listener(event: Event) -> None:
            if isinstance(event, kind) and where(event):
                stop()
                action(event)

        stop = self.runtime.bus.listen(listener)

    async def still_serves(self, channel: str, marker: str) -> None:
        """Proof the gateway serves others: a fresh message in ``channel`` gets its reply."""
        posted, thread_id = await self.ask(channel, f"[[reply:{marker}]] still there?")
        await self.chat.sent(thread_id, marker, posted.seq)


@asynccontextmanager
async def in_process_gateway(
    sandbox: SandboxServer,
    profile: Profile,
    *,
    settings: Mapping[str, Any] | None = None,
) -> AsyncIterator[World]:
    """Run the profile's gateway in this event loop until the block ends (then stop it cleanly)."""
    shim = profile.root / "bin" / "claude"
    chosen: dict[str, Any] = {
        "config": load_config(profile.config_path),
        "token": sandbox.token,
        "sessions_path": profile.sessions_path,
        "run_dir": profile.locations.run_dir,
        "api_base": sandbox.api_base,
        "claude_command": (str(shim),),
        "child_env": {"CLAUDE_CONFIG_DIR": str(profile.claude_home), "MPG_AGENT_LOG": str(profile.agent_log.path)},
        "guild_ready_timeout": 0.05,
        "config_path": profile.config_path,
        **(settings or {}),
    }
    runtime = Runtime(RuntimeSettings(**chosen))
    task = asyncio.create_task(runtime.run(), name="in-process gateway")
    ready = asyncio.create_task(runtime.client.ready.wait())
    try:
        done, _ = await asyncio.wait({task, ready}, timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            if task in done:
                task.result()
            raise TimeoutError("the in-process gateway did not connect to the sandbox")
        yield World(sandbox, profile, runtime, Chat(sandbox))
    finally:
        ready.cancel()
        runtime.request_stop()
        try:
            await asyncio.wait_for(task, READY_TIMEOUT_S)  # a failure to shut down cleanly fails the test
        finally:
            restore_discord_endpoints()


StartWorld = Callable[..., Awaitable[World]]


@pytest.fixture
async def start_world(tmp_path: Path) -> AsyncIterator[StartWorld]:
    """``await start_world(channels, defaults=, settings=, prepare=)``: a ready :class:`World`."""
    async with AsyncExitStack() as stack:

        async def start(
            channels: Channels,
            *,
            defaults: Mapping[str, Any] | None = None,
            settings: Mapping[str, Any] | None = None,
            prepare: Callable[[Profile], object] | None = None,
        ) -> World:
            sandbox = await stack.enter_async_context(SandboxServer(sandbox_spec(channels)))
            profile = profile_for(sandbox, tmp_path / "world", channels, defaults or {})
            if prepare is not None:
                prepare(profile)  # what the disk holds before the gateway starts
            return await stack.enter_async_context(in_process_gateway(sandbox, profile, settings=settings))

        yield start


def orphan_pids(profile: Profile) -> list[int]:
    """Processes the stand-in started with ``[[error:orphan]]`` and left behind on purpose."""
    if not profile.agent_log.path.exists():
        return []
    entries = [json.loads(line) for line in profile.agent_log.path.read_text(encoding="utf-8").splitlines()]
    return [int(entry["orphan_pid"]) for entry in entries if "orphan_pid" in entry]


async def process_gone(pid: int, timeout: float = WAIT_S) -> None:
    """Until process ``pid`` has ended (it need not be our child): a pidfd turns readable then."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(fd, readable)
    try:
        async with asyncio.timeout(timeout):
            await ended
    finally:
        loop.remove_reader(fd)
        os.close(fd)
