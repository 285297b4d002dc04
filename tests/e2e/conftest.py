"""Fixtures for end-to-end tests: a sandbox Discord server, and real discord.py clients on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import discord
import pytest

from mpg_tui.discord_adapter.endpoint import point_discord_py_at, restore_discord_endpoints
from mpg_tui.sandbox.discord import SandboxServer, SandboxSpec
from mpg_tui.sandbox.discord.testing import RecordingClient, running_client

StartBot = Callable[..., Awaitable[RecordingClient]]


@pytest.fixture
def spec() -> SandboxSpec:
    """The sandbox's world; parametrize ``spec`` in a test to change it."""
    return SandboxSpec.default(channels=["general", "ops"])


@pytest.fixture
async def sandbox(spec: SandboxSpec) -> AsyncIterator[SandboxServer]:
    """A started sandbox with discord.py pointed at it."""
    async with SandboxServer(spec) as server:
        point_discord_py_at(server.api_base)
        try:
            yield server
        finally:
            restore_discord_endpoints()


@pytest.fixture
async def start_bot(sandbox: SandboxServer) -> AsyncIterator[StartBot]:
    """``await start_bot(intents, **client_options)``: a ready RecordingClient, closed after the test."""
    async with AsyncExitStack() as stack:

        async def start(intents: discord.Intents | None = None, **options: Any) -> RecordingClient:
            client = RecordingClient(intents, **options)
            return await stack.enter_async_context(running_client(sandbox, client, point=False))

        yield start


@pytest.fixture
async def bot(start_bot: StartBot) -> RecordingClient:
    return await start_bot()
