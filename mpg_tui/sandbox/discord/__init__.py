"""A Discord-compatible server on loopback, for end-to-end tests, benchmarks and the demo.

Real discord.py talks to it unchanged once pointed at it
(:func:`mpg_tui.discord_adapter.endpoint.point_discord_py_at`): REST under ``/api/v10``,
the gateway websocket (zlib-stream, RESUME, intents), and a control API under
``/_sandbox/`` to play users, inject faults and see what the bot did.
"""

from mpg_tui.sandbox.discord.actions import Action, ActionKind, ActionLog
from mpg_tui.sandbox.discord.client import SandboxClient, SandboxClientError
from mpg_tui.sandbox.discord.errors import ApiError
from mpg_tui.sandbox.discord.faults import Fault
from mpg_tui.sandbox.discord.records import SandboxFile
from mpg_tui.sandbox.discord.server import SandboxServer
from mpg_tui.sandbox.discord.spec import (
    ChannelSpec,
    GuildSpec,
    RoleSpec,
    SandboxSpec,
    SpecError,
    UserSpec,
)

__all__ = [
    "Action",
    "ActionKind",
    "ActionLog",
    "ApiError",
    "ChannelSpec",
    "Fault",
    "GuildSpec",
    "RoleSpec",
    "SandboxClient",
    "SandboxClientError",
    "SandboxFile",
    "SandboxServer",
    "SandboxSpec",
    "SpecError",
    "UserSpec",
]
