"""MPG-compatible ``config.json`` models, their merge rules, and environment settings.

Field names are MPG's camelCase so an existing ``config.json`` loads unchanged; Python
code uses the snake_case attribute names. :func:`load_config` turns every problem into a
:class:`ConfigError` that names the file, the JSON path of the bad field and what was
expected; unknown keys are kept as warnings, never errors.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_settings import BaseSettings, SettingsConfigDict

from mpg_tui.presets import PRESETS

log = logging.getLogger(__name__)

DEFAULT_CLAUDE_ARGS = ["--permission-mode", "acceptEdits", "--output-format", "json"]
DEFAULT_ALLOWED_TOOLS = ["Read", "Edit", "Write", "Glob", "Grep", "Bash(git:*)", "TodoWrite"]
DEFAULT_MIME_TYPES = ["image/*", "text/*", "application/pdf", "application/json"]
TOOL_FLAGS = ("--allowed-tools", "--allowedTools", "--disallowed-tools", "--disallowedTools")


class ConfigError(Exception):
    """A config file that cannot be used; the message is meant for the operator."""

    def __init__(self, path: Path | None, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        where = str(path) if path else "config"
        super().__init__(f"{where}: " + "; ".join(problems))


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True)

    def unknown_keys(self, prefix: str) -> list[str]:
        found = [f"{prefix}.{k}" if prefix else k for k in (self.model_extra or {})]
        for name in type(self).model_fields:
            value = getattr(self, name)
            alias = type(self).model_fields[name].alias or name
            child = f"{prefix}.{alias}" if prefix else alias
            if isinstance(value, _Model):
                found += value.unknown_keys(child)
            elif isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(item, _Model):
                        found += item.unknown_keys(f"{child}.{key}")
        return found


class AgentSpec(_Model):
    """One agent as written in config: a preset, a preset plus extra prompt, or custom."""

    preset: str | None = None
    role: str | None = None
    prompt: str | None = None

    @model_validator(mode="after")
    def _check(self) -> AgentSpec:
        if self.preset is not None and self.preset.lower() not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; expected one of {', '.join(sorted(PRESETS))}")
        if self.preset is None and not self.role:
            raise ValueError("an agent needs either a 'preset' or a 'role'")
        return self


class Agent(BaseModel):
    """A resolved agent: lower-case name, role and the prompt it is given."""

    model_config = ConfigDict(frozen=True)
    name: str
    role: str
    prompt: str

    @property
    def system_prompt(self) -> str:
        return f"Your role: {self.role}\n\n{self.prompt}"


class Defaults(_Model):
    idle_timeout_ms: int = Field(1_800_000, ge=0)
    max_concurrent_sessions: int = Field(4, ge=1)
    claude_args: list[str] = Field(default_factory=lambda: list(DEFAULT_CLAUDE_ARGS))
    allowed_tools: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_TOOLS))
    disallowed_tools: list[str] = Field(default_factory=list)
    max_turns_per_agent: int = Field(5, ge=1)
    agent_timeout_ms: int = Field(180_000, ge=1000)
    run_timeout_ms: int = Field(1_800_000, ge=1000)
    """Timeout of a run that is not an agent turn (MPG has none; a hung claude must end)."""
    session_ttl_ms: int = Field(604_800_000, ge=0)
    persistence: Literal["tmux", "direct"] | None = None
    max_persisted_sessions: int = Field(50, ge=1)
    http_port: int | Literal[False] = 3100
    http_host: str = "127.0.0.1"
    """Dashboard bind address; anything but loopback needs ``dashboardToken``."""
    dashboard_token: str | None = None
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    stuck_notify_ms: int = Field(300_000, ge=0)
    max_attachment_size_mb: float = Field(10, ge=0)
    allowed_mime_types: list[str] = Field(default_factory=lambda: list(DEFAULT_MIME_TYPES))
    max_attachments_per_message: int = Field(5, ge=0)
    progress: Literal["off", "status"] = "status"
    discord_api_base: str | None = None
    """Base URL of a Discord-compatible server (the sandbox); unset means discord.com."""
    tmux_socket: str = "mpg-tui"
    worktrees: bool = True

    @field_validator("http_port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> Any:
        if value is True:
            raise ValueError("expected a port number or false")
        if isinstance(value, int) and not (0 <= value <= 65535):
            raise ValueError("expected a port number between 0 and 65535")
        return value


class Project(_Model):
    name: str | None = None
    directory: str
    idle_timeout_ms: int | None = Field(None, ge=0)
    claude_args: list[str] | None = None
    allowed_tools: list[str] | None = None
    disallowed_tools: list[str] | None = None
    agents: list[str] | dict[str, AgentSpec | None] | None = None
    allowed_roles: list[str] | None = None
    rate_limit_per_user: int | None = Field(None, ge=1)
    persistence: Literal["tmux", "direct"] | None = None
    worktrees: bool | None = None

    @field_validator("directory")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected a directory path")
        return value

    @field_validator("agents")
    @classmethod
    def _preset_names(
        cls, value: list[str] | dict[str, AgentSpec | None] | None
    ) -> list[str] | dict[str, AgentSpec | None] | None:
        if isinstance(value, list):
            for name in value:
                if name.lower() not in PRESETS:
                    raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(sorted(PRESETS))}")
        if isinstance(value, dict):
            for name, spec in value.items():
                if spec is None and name.lower() not in PRESETS:
                    raise ValueError(f"agent {name!r} is empty and is not a preset name")
        return value


class GatewayConfig(_Model):
    defaults: Defaults = Field(default_factory=lambda: Defaults())
    projects: dict[str, Project] = Field(default_factory=dict)

    @field_validator("projects")
    @classmethod
    def _channel_ids(cls, value: dict[str, Project]) -> dict[str, Project]:
        for channel_id in value:
            if not channel_id.isdigit():
                log.warning("project key %r is not a numeric Discord channel ID", channel_id)
        return value

    def project(self, channel_id: str) -> ProjectView | None:
        project = self.projects.get(channel_id)
        return ProjectView(channel_id, project, self.defaults) if project else None

    def views(self) -> list[ProjectView]:
        return [ProjectView(cid, p, self.defaults) for cid, p in self.projects.items()]

    @property
    def needs_members_intent(self) -> bool:
        return any(p.allowed_roles for p in self.projects.values())

    @property
    def uses_tmux(self) -> bool:
        return any(v.persistence == "tmux" for v in self.views())


class ProjectView:
    """A project with the defaults applied: what the core actually uses."""

    def __init__(self, channel_id: str, project: Project, defaults: Defaults) -> None:
        self.key = channel_id
        self.channel_id = channel_id
        self.raw = project
        self.defaults = defaults
        self.name = project.name or channel_id
        self.directory = project.directory
        self.idle_timeout_ms = (
            project.idle_timeout_ms if project.idle_timeout_ms is not None else defaults.idle_timeout_ms
        )
        self.allowed_roles = list(project.allowed_roles or [])
        self.rate_limit_per_user = project.rate_limit_per_user
        self.persistence: Literal["tmux", "direct"] = project.persistence or defaults.persistence or "direct"
        self.worktrees = defaults.worktrees if project.worktrees is None else project.worktrees
        self.agents: dict[str, Agent] = resolve_agents(project.agents)

    def agent(self, name: str) -> Agent | None:
        return self.agents.get(name.lower())

    def claude_args(self, *, warn: bool = True) -> list[str]:
        """``defaults.claudeArgs`` + project ``claudeArgs`` + tool flags, by MPG's rules."""
        args = list(self.defaults.claude_args) + list(self.raw.claude_args or [])
        if any(a in TOOL_FLAGS or a.split("=", 1)[0] in TOOL_FLAGS for a in args):
            return args
        allowed = self.raw.allowed_tools if self.raw.allowed_tools is not None else self.defaults.allowed_tools
        disallowed = (
            self.raw.disallowed_tools if self.raw.disallowed_tools is not None else self.defaults.disallowed_tools
        )
        if allowed:
            if disallowed and warn:
                log.warning("project %s sets both allowedTools and disallowedTools; allowedTools wins", self.name)
            return [*args, "--allowed-tools", *allowed]
        if disallowed:
            return [*args, "--disallowed-tools", *disallowed]
        return args


def resolve_agents(spec: list[str] | dict[str, AgentSpec | None] | None) -> dict[str, Agent]:
    agents: dict[str, Agent] = {}
    if spec is None:
        return agents
    if isinstance(spec, list):
        for name in spec:
            role, prompt = PRESETS[name.lower()]
            agents[name.lower()] = Agent(name=name.lower(), role=role, prompt=prompt)
        return agents
    for name, item in spec.items():
        key = name.lower()
        if item is None:
            role, prompt = PRESETS[key]
        elif item.preset is not None:
            role, prompt = PRESETS[item.preset.lower()]
            role = item.role or role
            if item.prompt:
                prompt = f"{prompt}\n\n{item.prompt}"
        else:
            role, prompt = item.role or key, item.prompt or ""
        agents[key] = Agent(name=key, role=role, prompt=prompt)
    return agents


def _json_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in {"list[str]", "dict[str,nullable[AgentSpec]]", "function-after[_check(), AgentSpec]"}:
            continue
        else:
            parts.append(f".{item}" if parts else str(item))
    return "".join(parts) or "(top level)"


def parse_config(data: Any, path: Path | None = None) -> GatewayConfig:
    if not isinstance(data, dict):
        raise ConfigError(path, ["(top level): expected a JSON object with 'defaults' and 'projects'"])
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            got = err.get("input")
            shown = json.dumps(got)[:60] if not isinstance(got, dict) else "an object"
            problems.append(f"{_json_path(err['loc'])}: {err['msg']} (got {shown})")
        raise ConfigError(path, problems) from None
    for key in config.unknown_keys(""):
        log.warning("%s: unknown key %s (ignored)", path or "config", key)
    return config


def load_config(path: Path) -> GatewayConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror}"]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(path, [f"line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"]) from None
    return parse_config(data, path)


class EnvSettings(BaseSettings):
    """Secrets and overrides from the environment (and the resolved ``.env`` files)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    discord_bot_token: str | None = Field(None, validation_alias=AliasChoices("DISCORD_BOT_TOKEN"))
    """The bot token. Never logged, never passed to claude."""
    mpg_home: str | None = Field(None, validation_alias=AliasChoices("MPG_HOME"))
    discord_api_base: str | None = Field(None, validation_alias=AliasChoices("MPG_DISCORD_API_BASE"))
    """Overrides ``defaults.discordApiBase``: point the client at a Discord-compatible server."""
    dashboard_token: str | None = Field(None, validation_alias=AliasChoices("MPG_DASHBOARD_TOKEN"))
    """Overrides ``defaults.dashboardToken``."""


SECRET_ENV_NAMES = ("DISCORD_BOT_TOKEN", "MPG_DASHBOARD_TOKEN")
