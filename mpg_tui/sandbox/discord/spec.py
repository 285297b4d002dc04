"""What the sandbox's Discord world contains: one guild, its channels, roles and people.

A :class:`SandboxSpec` is plain data. :meth:`SandboxSpec.default` builds a ready-made world
with deterministic snowflakes (the same names always get the same IDs), and
:meth:`SandboxSpec.from_dict` / :meth:`SandboxSpec.load` read one from JSON, turning every
problem into a :class:`SpecError` that names the offending field.

The module also owns snowflake arithmetic (:func:`snowflake_at`, :class:`SnowflakeFactory`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpg_tui.core.clock import Clock

DISCORD_EPOCH_MS = 1_420_070_400_000
"""2015-01-01T00:00:00Z: the origin of every snowflake's timestamp."""

SPEC_EPOCH_MS = 1_704_067_200_000
"""2024-01-01T00:00:00Z: the timestamp baked into the fixed IDs of a default spec."""

# Gateway intent bits (https://discord.com/developers/docs/events/gateway#gateway-intents).
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_GUILD_MESSAGE_TYPING = 1 << 11
INTENT_MESSAGE_CONTENT = 1 << 15

PRIVILEGED_INTENTS: dict[str, int] = {
    "members": INTENT_GUILD_MEMBERS,
    "presences": INTENT_GUILD_PRESENCES,
    "message_content": INTENT_MESSAGE_CONTENT,
}
"""Privileged intents by the name the sandbox uses for them in a spec."""

# Permission bits the bot needs to do MPG's job; @everyone gets them by default.
PERMISSION_ADD_REACTIONS = 1 << 6
PERMISSION_VIEW_CHANNEL = 1 << 10
PERMISSION_SEND_MESSAGES = 1 << 11
PERMISSION_EMBED_LINKS = 1 << 14
PERMISSION_ATTACH_FILES = 1 << 15
PERMISSION_READ_MESSAGE_HISTORY = 1 << 16
PERMISSION_CREATE_PUBLIC_THREADS = 1 << 35
PERMISSION_SEND_MESSAGES_IN_THREADS = 1 << 38
DEFAULT_EVERYONE_PERMISSIONS = (
    PERMISSION_ADD_REACTIONS
    | PERMISSION_VIEW_CHANNEL
    | PERMISSION_SEND_MESSAGES
    | PERMISSION_EMBED_LINKS
    | PERMISSION_ATTACH_FILES
    | PERMISSION_READ_MESSAGE_HISTORY
    | PERMISSION_CREATE_PUBLIC_THREADS
    | PERMISSION_SEND_MESSAGES_IN_THREADS
)

DEFAULT_TOKEN = "sandbox-bot-token"  # noqa: S105 - a fixed credential for a loopback test server

_SNOWFLAKE = re.compile(r"^[1-9][0-9]{0,19}$")


class SpecError(ValueError):
    """A sandbox spec that cannot be used; the message names the field and the problem."""


def snowflake_at(ms: int, increment: int = 0, *, worker: int = 0, process: int = 0) -> int:
    """The snowflake Discord would mint at Unix time ``ms`` (milliseconds)."""
    return ((ms - DISCORD_EPOCH_MS) << 22) | ((worker & 0x1F) << 17) | ((process & 0x1F) << 12) | (increment & 0xFFF)


def snowflake_time(snowflake: int | str) -> float:
    """Unix time in seconds encoded in a snowflake."""
    return ((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000


class SnowflakeFactory:
    """Mints increasing snowflakes from a clock: messages sort by ID as they sort by time.

    Two IDs minted in the same millisecond, or a clock that stands still (``FakeClock``),
    still give strictly increasing IDs, so history paging by ``before``/``after`` is exact.
    """

    def __init__(self, clock: Clock, *, worker: int = 1) -> None:
        self._clock = clock
        self._worker = worker
        self._last = 0

    def next(self) -> str:
        candidate = snowflake_at(int(self._clock.now() * 1000), worker=self._worker)
        self._last = max(candidate, self._last + 1)
        return str(self._last)


@dataclass(frozen=True)
class GuildSpec:
    id: str
    name: str


@dataclass(frozen=True)
class ChannelSpec:
    """A text channel (type 0) of the guild."""

    id: str
    name: str
    topic: str | None = None


@dataclass(frozen=True)
class RoleSpec:
    """A guild role other than ``@everyone`` (which always exists with the guild's ID)."""

    id: str
    name: str
    permissions: int = 0
    color: int = 0


@dataclass(frozen=True)
class UserSpec:
    id: str
    username: str
    roles: tuple[str, ...] = ()
    """Role IDs the member has (``@everyone`` is implied)."""
    bot: bool = False
    global_name: str | None = None


@dataclass(frozen=True)
class SandboxSpec:
    """The guild the sandbox serves, the people in it and the bot that connects to it."""

    guild: GuildSpec
    channels: tuple[ChannelSpec, ...]
    roles: tuple[RoleSpec, ...]
    users: tuple[UserSpec, ...]
    bot: UserSpec
    token: str = DEFAULT_TOKEN
    everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS
    privileged_intents: frozenset[str] = field(default_factory=lambda: frozenset(PRIVILEGED_INTENTS))
    """Privileged intents "enabled in the developer portal"; asking for another closes with 4014."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        seen: dict[str, str] = {}

        def claim(snowflake: str, where: str) -> None:
            if not _SNOWFLAKE.match(snowflake):
                problems.append(f"{where}: {snowflake!r} is not a snowflake (a positive integer, as a string)")
            elif snowflake in seen:
                problems.append(f"{where}: id {snowflake} is already used by {seen[snowflake]}")
            else:
                seen[snowflake] = where

        claim(self.guild.id, "guild.id")
        for i, channel in enumerate(self.channels):
            claim(channel.id, f"channels[{i}].id")
        for i, role in enumerate(self.roles):
            claim(role.id, f"roles[{i}].id")
        claim(self.bot.id, "bot.id")
        for i, user in enumerate(self.users):
            claim(user.id, f"users[{i}].id")
        role_ids = {role.id for role in self.roles} | {self.guild.id}
        for i, user in enumerate((*self.users, self.bot)):
            where = f"users[{i}]" if i < len(self.users) else "bot"
            problems += [f"{where}.roles: unknown role id {r}" for r in user.roles if r not in role_ids]
        if not self.bot.bot:
            problems.append("bot.bot: the bot user must have bot=true")
        if not self.token:
            problems.append("token: must not be empty")
        unknown = sorted(self.privileged_intents - PRIVILEGED_INTENTS.keys())
        if unknown:
            problems.append(f"privileged_intents: unknown {unknown}; expected some of {sorted(PRIVILEGED_INTENTS)}")
        if problems:
            raise SpecError("; ".join(problems))

    # -- look-ups -------------------------------------------------------------------------

    def channel(self, name_or_id: str) -> ChannelSpec:
        for channel in self.channels:
            if name_or_id in (channel.name, channel.id):
                return channel
        raise KeyError(f"no channel {name_or_id!r}; have {[c.name for c in self.channels]}")

    def user(self, name_or_id: str) -> UserSpec:
        for user in (*self.users, self.bot):
            if name_or_id in (user.username, user.id):
                return user
        raise KeyError(f"no user {name_or_id!r}; have {[u.username for u in self.users]}")

    def role(self, name_or_id: str) -> RoleSpec:
        for role in self.roles:
            if name_or_id in (role.name, role.id):
                return role
        raise KeyError(f"no role {name_or_id!r}; have {[r.name for r in self.roles]}")

    @property
    def privileged_intent_bits(self) -> int:
        bits = 0
        for name in self.privileged_intents:
            bits |= PRIVILEGED_INTENTS[name]
        return bits

    # -- building -------------------------------------------------------------------------

    @classmethod
    def default(
        cls,
        channels: Sequence[str] = ("general",),
        *,
        roles: Sequence[str] = ("developer",),
        users: Mapping[str, Sequence[str]] | None = None,
        guild_name: str = "Sandbox Guild",
        bot_name: str = "mpg-bot",
        token: str = DEFAULT_TOKEN,
        privileged_intents: Iterable[str] = tuple(PRIVILEGED_INTENTS),
    ) -> SandboxSpec:
        """A world with the given channel and role names; IDs are fixed by position.

        ``users`` maps usernames to the names of their roles; by default ``alice`` is a
        ``developer`` and ``bob`` has no role.
        """
        if users is None:
            users = {"alice": list(roles[:1]), "bob": []}
        counter = iter(range(1, 4096))

        def next_id() -> str:
            return str(snowflake_at(SPEC_EPOCH_MS, next(counter)))

        guild = GuildSpec(next_id(), guild_name)
        bot = UserSpec(next_id(), bot_name, bot=True)
        channel_specs = tuple(ChannelSpec(next_id(), name) for name in channels)
        role_specs = tuple(RoleSpec(next_id(), name) for name in roles)
        by_name = {role.name: role.id for role in role_specs}
        user_specs: list[UserSpec] = []
        for username, role_names in users.items():
            missing = [r for r in role_names if r not in by_name]
            if missing:
                raise SpecError(f"users.{username}: unknown role names {missing}; have {sorted(by_name)}")
            user_specs.append(UserSpec(next_id(), username, tuple(by_name[r] for r in role_names)))
        return cls(
            guild=guild,
            channels=channel_specs,
            roles=role_specs,
            users=tuple(user_specs),
            bot=bot,
            token=token,
            privileged_intents=frozenset(privileged_intents),
        )

    # -- JSON -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        def user(u: UserSpec) -> dict[str, Any]:
            return {
                "id": u.id,
                "username": u.username,
                "roles": list(u.roles),
                "bot": u.bot,
                "global_name": u.global_name,
            }

        return {
            "guild": {"id": self.guild.id, "name": self.guild.name},
            "channels": [{"id": c.id, "name": c.name, "topic": c.topic} for c in self.channels],
            "roles": [{"id": r.id, "name": r.name, "permissions": r.permissions, "color": r.color} for r in self.roles],
            "users": [user(u) for u in self.users],
            "bot": user(self.bot),
            "token": self.token,
            "everyone_permissions": self.everyone_permissions,
            "privileged_intents": sorted(self.privileged_intents),
        }

    @classmethod
    def from_dict(cls, data: Any) -> SandboxSpec:
        reader = _Reader(data, "(top level)")
        guild = reader.child("guild")
        bot = _read_user(reader.child("bot"), bot_default=True)
        spec = cls(
            guild=GuildSpec(id=guild.snowflake("id"), name=guild.text("name")),
            channels=tuple(
                ChannelSpec(id=c.snowflake("id"), name=c.text("name"), topic=c.optional_text("topic"))
                for c in reader.items("channels")
            ),
            roles=tuple(
                RoleSpec(
                    id=r.snowflake("id"),
                    name=r.text("name"),
                    permissions=r.integer("permissions", 0),
                    color=r.integer("color", 0),
                )
                for r in reader.items("roles", required=False)
            ),
            users=tuple(_read_user(u, bot_default=False) for u in reader.items("users", required=False)),
            bot=bot,
            token=reader.text("token", DEFAULT_TOKEN),
            everyone_permissions=reader.integer("everyone_permissions", DEFAULT_EVERYONE_PERMISSIONS),
            privileged_intents=frozenset(reader.strings("privileged_intents", list(PRIVILEGED_INTENTS))),
        )
        return spec

    @classmethod
    def load(cls, path: Path) -> SandboxSpec:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SpecError(f"{path}: file not found") from None
        except json.JSONDecodeError as exc:
            raise SpecError(f"{path}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}") from None
        try:
            return cls.from_dict(data)
        except SpecError as exc:
            raise SpecError(f"{path}: {exc}") from None


def _read_user(reader: _Reader, *, bot_default: bool) -> UserSpec:
    return UserSpec(
        id=reader.snowflake("id"),
        username=reader.text("username"),
        roles=tuple(reader.strings("roles", [])),
        bot=reader.boolean("bot", bot_default),
        global_name=reader.optional_text("global_name"),
    )


class _Reader:
    """Typed access to one JSON object, with errors that carry the JSON path."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise SpecError(f"{path}: expected an object, got {type(data).__name__}")
        self._data: dict[str, Any] = data
        self._path = path

    def _where(self, key: str) -> str:
        return key if self._path == "(top level)" else f"{self._path}.{key}"

    def _get(self, key: str, default: Any) -> Any:
        if key not in self._data:
            if default is _REQUIRED:
                raise SpecError(f"{self._where(key)}: missing")
            return default
        return self._data[key]

    def child(self, key: str) -> _Reader:
        return _Reader(self._get(key, _REQUIRED), self._where(key))

    def items(self, key: str, *, required: bool = True) -> list[_Reader]:
        value = self._get(key, _REQUIRED if required else [])
        if not isinstance(value, list):
            raise SpecError(f"{self._where(key)}: expected a list")
        return [_Reader(item, f"{self._where(key)}[{i}]") for i, item in enumerate(value)]

    def snowflake(self, key: str) -> str:
        value = self._get(key, _REQUIRED)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not _SNOWFLAKE.match(value):
            raise SpecError(f"{self._where(key)}: expected a snowflake string, got {json.dumps(value)}")
        return value

    def text(self, key: str, default: Any = None) -> str:
        value = self._get(key, _REQUIRED if default is None else default)
        if not isinstance(value, str) or not value:
            raise SpecError(f"{self._where(key)}: expected a non-empty string, got {json.dumps(value)}")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self._get(key, None)
        if value is not None and not isinstance(value, str):
            raise SpecError(f"{self._where(key)}: expected a string or null, got {json.dumps(value)}")
        return value

    def integer(self, key: str, default: int) -> int:
        value = self._get(key, default)
        if isinstance(value, str) and value.isdigit():
            value = int(value)  # permissions are decimal strings on the wire; accept both
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SpecError(f"{self._where(key)}: expected a non-negative integer, got {json.dumps(value)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise SpecError(f"{self._where(key)}: expected true or false, got {json.dumps(value)}")
        return value

    def strings(self, key: str, default: list[str]) -> list[str]:
        value = self._get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SpecError(f"{self._where(key)}: expected a list of strings, got {json.dumps(value)}")
        return value


_REQUIRED: Any = object()
