"""The models of ``config.json``: MPG's camelCase keys, their defaults and merge rules.

Field names are MPG's camelCase so an existing ``config.json`` loads unchanged; Python
code uses the snake_case attribute names. :class:`ProjectView` is one project with the
defaults applied, which is what the rest of the gateway reads. Validation is strict:
JSON has no coercions to guess at, so a wrong type is named rather than read.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from mpg_tui.config.env import SECRET_ENV_NAMES
from mpg_tui.presets import PRESETS

log = logging.getLogger(__name__)

DEFAULT_CLAUDE_ARGS = ["--permission-mode", "acceptEdits", "--output-format", "json"]
DEFAULT_ALLOWED_TOOLS = ["Read", "Edit", "Write", "Glob", "Grep", "Bash(git:*)", "TodoWrite"]
DEFAULT_MIME_TYPES = ["image/*", "text/*", "application/pdf", "application/json"]
TOOL_FLAGS = ("--allowed-tools", "--allowedTools", "--disallowed-tools", "--disallowedTools")

_SNOWFLAKE = re.compile(r"\d{17,20}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_AGENT_NAME = re.compile(r"[\w.-]+")


def is_snowflake(value: str) -> bool:
    """True for a Discord ID as Discord writes them: 17 to 20 digits."""
    return _SNOWFLAKE.fullmatch(value) is not None


class _Model(BaseModel):
    # strict: JSON has no int/str/bool coercions to guess at, and `"idleTimeoutMs": true`
    # is a mistake worth naming rather than reading as 1.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True, strict=True)

    def unknown_keys(self, prefix: str) -> list[str]:
        """JSON paths of every key that no model field claims, depth first."""
        found = [f"{prefix}.{k}" if prefix else k for k in (self.model_extra or {})]
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            alias = info.alias or name
            child = f"{prefix}.{alias}" if prefix else alias
            if isinstance(value, _Model):
                found += value.unknown_keys(child)
            elif isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(item, _Model):
                        found += item.unknown_keys(f"{child}.{key}")
        return found


def _preset_list() -> str:
    return ", ".join(sorted(PRESETS))


def _known_preset(name: str) -> str:
    if name.lower() not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {_preset_list()}")
    return name


def _agent_name(name: str) -> str:
    # Names are typed as `@name` and `!name` and end up in session keys `<thread>:<name>`.
    if _AGENT_NAME.fullmatch(name) is None:
        raise ValueError(f"agent name {name!r} may only use letters, digits, '_', '-' and '.'")
    return name


def _passable_env_name(name: str) -> str:
    # Claude runs shell commands: the gateway's own secrets must never be handed to it.
    if _ENV_NAME.fullmatch(name) is None:
        raise ValueError(f"{name!r} is not an environment variable name")
    if name.upper() in SECRET_ENV_NAMES:
        raise ValueError(f"{name} is the gateway's own secret and is never passed to claude")
    return name


PresetName = Annotated[str, AfterValidator(_known_preset)]
PassEnvName = Annotated[str, AfterValidator(_passable_env_name)]


def _whole_dollars(value: Any) -> Any:
    # Strict mode refuses an int for a float field, but ``"dailyBudgetUsd": 5`` is plainly meant.
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


Dollars = Annotated[float, BeforeValidator(_whole_dollars), Field(gt=0)]
"""A spending limit in US dollars; above zero (leave it out for no limit)."""
AgentName = Annotated[str, AfterValidator(_agent_name)]


class AgentSpec(_Model):
    """One agent as written in config: a preset, a preset plus extra prompt, or custom."""

    preset: PresetName | None = None
    role: str | None = None
    prompt: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> AgentSpec:
        if self.preset is None and not (self.role and self.prompt):
            raise ValueError("expected a 'preset', or both 'role' and 'prompt' for a custom agent")
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
    """``defaults``: gateway-wide settings; MPG's defaults where MPG has the setting."""

    idle_timeout_ms: int = Field(1_800_000, ge=0)
    """Idle time after which a session leaves memory (it stays on disk)."""
    max_concurrent_sessions: int = Field(4, ge=1)
    """Claude processes running at once, across all projects."""
    claude_args: list[str] = Field(default_factory=lambda: list(DEFAULT_CLAUDE_ARGS))
    """Arguments for every claude run; a project's ``claudeArgs`` are appended."""
    allowed_tools: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_TOOLS))
    disallowed_tools: list[str] = Field(default_factory=list)
    max_turns_per_agent: int = Field(5, ge=0)
    """Automatic handoffs in one chain; 0 turns handoffs off."""
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
    """How often a long run posts "Still working…"; 0 turns it off."""
    max_attachment_size_mb: float = Field(10, ge=0)
    allowed_mime_types: list[str] = Field(default_factory=lambda: list(DEFAULT_MIME_TYPES))
    max_attachments_per_message: int = Field(5, ge=0)
    progress: Literal["off", "status"] = "status"
    discord_api_base: str | None = None
    """Base URL of a Discord-compatible server (the sandbox); unset means discord.com."""
    tmux_socket: str = "mpg-tui"
    worktrees: bool = True
    warm: bool = True
    """Keep a session's claude running between its turns (direct runs; tmux runs are one process a turn)."""
    warm_idle_ms: int = Field(600_000, ge=0)
    """A warm claude idle this long is closed (the session resumes in a new one)."""
    max_warm_processes: int | None = Field(None, ge=1)
    """Warm claude processes kept at most, least recently used closed first; default ``maxConcurrentSessions``."""
    pass_env: list[PassEnvName] = Field(default_factory=list)
    """Environment variables passed to claude on purpose, though their names look secret
    (``GITHUB_TOKEN`` for ``git push``); a project's list adds to this one."""
    max_turn_cost_usd: Dollars | None = None
    """Dollars one claude turn may spend; passed to claude as ``--max-budget-usd``."""
    max_thread_cost_usd: Dollars | None = None
    """Dollars all sessions of one thread (agents included) may spend before it pauses."""
    daily_budget_usd: Dollars | None = None
    """Dollars a project may spend per calendar day (gateway's local time) before it pauses."""
    approver_roles: list[str] = Field(default_factory=list)
    """Role names or IDs whose members may decide for others (``!continue``), besides the requester."""
    max_reply_messages: int = Field(5, ge=1, le=50)
    """Messages a reply may take in a thread; a longer one follows whole as a ``reply.md`` file."""
    catch_up: bool = True
    """On start and after a reconnect that was not a resume, answer what was posted meanwhile."""
    catch_up_max_age_ms: int = Field(3_600_000, ge=0)
    """Messages older than this are not caught up (they are counted and the operator is told)."""
    catch_up_max_messages: int = Field(50, ge=1, le=1000)
    """Messages caught up per channel or thread at most; older ones beyond it are counted as skipped."""
    approvals: Literal["relay", "deny"] = "relay"
    """``relay``: a tool call the allow/deny lists do not settle, a question or a plan is asked in
    the thread, the cockpit and the dashboard; ``deny``: refused at once (MPG's behaviour)."""
    approval_timeout_ms: int = Field(600_000, ge=1000)
    """How long a relayed request waits for a person before it is denied."""

    @field_validator("http_port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> Any:
        if value is True:
            raise ValueError("expected a port number or false")
        if isinstance(value, int) and not isinstance(value, bool) and not (0 <= value <= 65535):
            raise ValueError("expected a port number between 0 and 65535")
        return value


def _expand_directory(value: str, base_dir: Path | None) -> str:
    expanded = os.path.expanduser(value.strip())
    if base_dir is not None and not os.path.isabs(expanded):
        expanded = os.path.join(base_dir, expanded)
    return os.path.normpath(expanded) if os.path.isabs(expanded) else expanded


class Project(_Model):
    """``projects.<channelId>``: one channel mapped to one project directory."""

    name: str | None = None
    directory: str
    """Expanded (``~``); a relative path is resolved against the config file's folder."""
    idle_timeout_ms: int | None = Field(None, ge=0)
    claude_args: list[str] | None = None
    allowed_tools: list[str] | None = None
    disallowed_tools: list[str] | None = None
    agents: list[PresetName] | dict[AgentName, AgentSpec | None] | None = None
    allowed_roles: list[str] | None = None
    rate_limit_per_user: int | None = Field(None, ge=0)
    """Messages per user per minute; 0 or absent means no limit."""
    persistence: Literal["tmux", "direct"] | None = None
    worktrees: bool | None = None
    warm: bool | None = None
    pass_env: list[PassEnvName] | None = None
    max_turn_cost_usd: Dollars | None = None
    max_thread_cost_usd: Dollars | None = None
    daily_budget_usd: Dollars | None = None
    approver_roles: list[str] | None = None
    """Replaces ``defaults.approverRoles`` for this project."""
    approvals: Literal["relay", "deny"] | None = None
    approval_timeout_ms: int | None = Field(None, ge=1000)

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise ValueError("expected a directory path")
        context = info.context if isinstance(info.context, Mapping) else {}
        base = context.get("base_dir")
        return _expand_directory(value, base if isinstance(base, Path) else None)

    @field_validator("agents", mode="before")
    @classmethod
    def _agents_shape(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, list | dict):
            raise ValueError("expected a list of preset names or an object of named agents")
        return value

    @field_validator("agents")
    @classmethod
    def _agent_names(
        cls, value: list[str] | dict[str, AgentSpec | None] | None
    ) -> list[str] | dict[str, AgentSpec | None] | None:
        if value is None:
            return value
        seen: dict[str, str] = {}
        for name, spec in value.items() if isinstance(value, dict) else ((n, None) for n in value):
            if spec is None and name.lower() not in PRESETS:
                raise ValueError(f"agent {name!r} is empty and is not a preset name ({_preset_list()})")
            if name.lower() in seen:
                raise ValueError(f"agent names are case-insensitive: {seen[name.lower()]!r} and {name!r} clash")
            seen[name.lower()] = name
        return value


class GatewayConfig(_Model):
    """The whole ``config.json``."""

    defaults: Defaults = Field(default_factory=lambda: Defaults())
    projects: dict[str, Project] = Field(default_factory=dict)
    _views: dict[str, ProjectView] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._views = {cid: ProjectView(cid, p, self.defaults) for cid, p in self.projects.items()}

    def project(self, channel_id: str) -> ProjectView | None:
        return self._views.get(channel_id)

    def views(self) -> list[ProjectView]:
        return list(self._views.values())

    @property
    def needs_members_intent(self) -> bool:
        # Role checks need members' roles: allowedRoles, and approverRoles (who may decide).
        return any(p.allowed_roles for p in self.projects.values()) or any(v.approver_roles for v in self.views())

    @property
    def warm_processes_limit(self) -> int:
        """``maxWarmProcesses``, or ``maxConcurrentSessions`` when it is not set."""
        return self.defaults.max_warm_processes or self.defaults.max_concurrent_sessions

    @property
    def uses_tmux(self) -> bool:
        return any(v.persistence == "tmux" for v in self._views.values())


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
        self.rate_limit_per_user = project.rate_limit_per_user or None
        self.persistence: Literal["tmux", "direct"] = project.persistence or defaults.persistence or "direct"
        self.worktrees = defaults.worktrees if project.worktrees is None else project.worktrees
        self.warm = defaults.warm if project.warm is None else project.warm
        self.agents: dict[str, Agent] = resolve_agents(project.agents)
        self.pass_env: tuple[str, ...] = tuple(dict.fromkeys([*defaults.pass_env, *(project.pass_env or [])]))
        self.budget = BudgetLimits.of(project, defaults)
        self.approver_roles = list(
            defaults.approver_roles if project.approver_roles is None else project.approver_roles
        )
        self.approvals: Literal["relay", "deny"] = project.approvals or defaults.approvals
        self.approval_timeout_ms = project.approval_timeout_ms or defaults.approval_timeout_ms

    def __repr__(self) -> str:
        return f"ProjectView(key={self.key!r}, name={self.name!r}, directory={self.directory!r})"

    def agent(self, name: str) -> Agent | None:
        return self.agents.get(name.lower())

    @property
    def tool_lists(self) -> tuple[list[str], list[str]]:
        """(allowed, disallowed) after MPG's override rule: a project's list replaces the default."""
        raw, defaults = self.raw, self.defaults
        allowed = raw.allowed_tools if raw.allowed_tools is not None else defaults.allowed_tools
        disallowed = raw.disallowed_tools if raw.disallowed_tools is not None else defaults.disallowed_tools
        return list(allowed), list(disallowed)

    def claude_args(self, *, warn: bool = False) -> list[str]:
        """``defaults.claudeArgs`` + project ``claudeArgs`` + tool flags, by MPG's rules.

        Tool flags are left out when the configured arguments already carry one (MPG
        avoids the conflict the same way). ``allowedTools`` wins over
        ``disallowedTools``; :func:`parse_config` already warns about that once, so
        ``warn`` is only for callers that build a view by hand.
        """
        args = list(self.defaults.claude_args) + list(self.raw.claude_args or [])
        if any(a.split("=", 1)[0] in TOOL_FLAGS for a in args):
            return args
        allowed, disallowed = self.tool_lists
        if allowed:
            if disallowed and warn:
                log.warning("project %s sets both allowedTools and disallowedTools; allowedTools wins", self.name)
            return [*args, "--allowed-tools", *allowed]
        if disallowed:
            return [*args, "--disallowed-tools", *disallowed]
        return args


class BudgetLimits(BaseModel):
    """A project's spending limits with the defaults applied (None: no limit)."""

    model_config = ConfigDict(frozen=True)
    max_turn_cost_usd: float | None = None
    max_thread_cost_usd: float | None = None
    daily_budget_usd: float | None = None

    @classmethod
    def of(cls, project: Project, defaults: Defaults) -> BudgetLimits:
        def pick(own: float | None, default: float | None) -> float | None:
            return own if own is not None else default

        return cls(
            max_turn_cost_usd=pick(project.max_turn_cost_usd, defaults.max_turn_cost_usd),
            max_thread_cost_usd=pick(project.max_thread_cost_usd, defaults.max_thread_cost_usd),
            daily_budget_usd=pick(project.daily_budget_usd, defaults.daily_budget_usd),
        )


def resolve_agents(spec: list[str] | dict[str, AgentSpec | None] | None) -> dict[str, Agent]:
    """Agents by lower-case name, from any of the three ways config can name them."""
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
