"""Helpers to run a plain discord.py client against a :class:`~.server.SandboxServer`.

For end-to-end tests and benchmarks: :class:`RecordingClient` queues what it sees, so a
test awaits the event it expects instead of sleeping, and :func:`running_client` starts
one inside the current event loop (``async with client: await client.start(token)``),
waits for ``on_ready`` and closes it afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import discord

from mpg_tui.discord_adapter.endpoint import point_discord_py_at, restore_discord_endpoints
from mpg_tui.sandbox.discord.server import SandboxServer

READY_TIMEOUT = 10.0


def bot_intents(*, members: bool = True, message_content: bool = True) -> discord.Intents:
    """What MPG asks for: guilds, guild messages and reactions, plus the two privileged intents."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.guild_reactions = True
    intents.message_content = message_content
    intents.members = members
    return intents


class RecordingClient(discord.Client):
    """A plain discord.py client that queues the events it receives."""

    def __init__(self, intents: discord.Intents | None = None, **options: Any) -> None:
        # on_ready fires guild_ready_timeout after the last GUILD_CREATE; the default 2 s is needless here.
        options.setdefault("guild_ready_timeout", 0.05)
        super().__init__(intents=intents or bot_intents(), **options)
        self.ready = asyncio.Event()
        self.ready_count = 0
        self.resumed = asyncio.Event()
        self.inbox: asyncio.Queue[discord.Message] = asyncio.Queue()
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py waits 5 s before every re-IDENTIFY to respect Discord's identify limit;
        # the sandbox has no such limit, so a test of op 9 need not wait.
        return None

    async def on_ready(self) -> None:
        self.ready_count += 1
        self.ready.set()

    async def on_resumed(self) -> None:
        self.resumed.set()

    async def on_message(self, message: discord.Message) -> None:
        self.inbox.put_nowait(message)

    async def on_thread_create(self, thread: discord.Thread) -> None:
        self.events.put_nowait(("thread_create", thread))

    async def on_thread_update(self, before: discord.Thread, after: discord.Thread) -> None:
        self.events.put_nowait(("thread_update", after))

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        self.events.put_nowait(("message_delete", payload))

    async def next_message(
        self, predicate: Callable[[discord.Message], bool] = lambda _m: True, timeout: float = 5.0
    ) -> discord.Message:
        """The next queued message matching ``predicate`` (others are consumed)."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.inbox.get()
                if predicate(message):
                    return message

    async def next_event(self, name: str, timeout: float = 5.0) -> Any:
        """The next queued ``thread_create`` / ``thread_update`` / ``message_delete`` event's object."""
        async with asyncio.timeout(timeout):
            while True:
                kind, value = await self.events.get()
                if kind == name:
                    return value


async def run_client(client: discord.Client, token: str) -> None:
    """Run ``client`` until it is closed; raises what ``client.start`` raises (LoginFailure, ...)."""
    async with client:
        await client.start(token)


@asynccontextmanager
async def running_client(
    server: SandboxServer, client: RecordingClient | None = None, *, point: bool = True
) -> AsyncIterator[RecordingClient]:
    """Start ``client`` on ``server``, wait for on_ready, and close it on exit.

    With ``point`` (the default) discord.py is pointed at the server for the duration.
    """
    client = client or RecordingClient()
    if point:
        point_discord_py_at(server.api_base)
    task = asyncio.create_task(run_client(client, server.token), name="sandbox-discord-client")
    try:
        ready = asyncio.create_task(client.ready.wait())
        done, _ = await asyncio.wait({task, ready}, timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if task in done:
                task.result()  # re-raise why the client stopped
            raise TimeoutError("the discord.py client did not become ready on the sandbox")
        yield client
    finally:
        try:
            await client.close()
            if not task.done():
                await asyncio.wait_for(task, READY_TIMEOUT)
        finally:
            if point:
                restore_discord_endpoints()
