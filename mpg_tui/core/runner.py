"""The core's port for running claude: one turn for a session key, with progress.

The runners in :mod:`mpg_tui.runners` (direct subprocess, tmux) subclass :class:`Runner`;
the core only ever sees this class. Its optional abilities (a tmux session to attach to,
results kept until acknowledged, state released when a session goes idle) are abstract
methods rather than capabilities discovered by name at run time, so a runner that misses or
misspells one cannot be instantiated and ``mypy --strict`` says so.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mpg_tui.core.events import RunnerKind
from mpg_tui.core.permissions import AskPermission, PermissionRelay

ErrorKind = Literal[
    "auth",  # not logged in / 401
    "usage_limit",  # plan usage limit reached
    "rate_limit",  # 429
    "overloaded",  # 529 / 500-class API errors
    "api",  # any other API error
    "max_turns",  # --max-turns exhausted
    "max_budget",  # --max-budget-usd reached: claude ended the turn at its spending cap
    "budget_paused",  # not started: the thread's or the project-day's budget is spent
    "timeout",  # we killed it
    "empty",  # exited 0 but said nothing usable
    "crash",  # non-zero exit, garbage, or killed by a signal
    "session_not_found",  # --resume could not find the session
    "missing_cli",  # claude is not on PATH
    "cancelled",  # killed by !kill / the cockpit
    "interrupted",  # stopped by !stop / the cockpit; the session goes on
    "detached",  # the gateway stopped watching a tmux run that goes on; the next one delivers it
]


INTERRUPTED_ERROR = "Stopped: the turn was interrupted. The session goes on; send a message to continue."


@dataclass(frozen=True)
class RunRequest:
    key: str
    """Session key: ``<threadId>`` or ``<threadId>:<agent>``."""
    cwd: Path
    prompt: str
    args: list[str]
    """Config-derived claude arguments (``ProjectView.claude_args()`` + agent system prompt)."""
    session_id: str | None = None
    """Resume this claude session (``--resume``) when set."""
    timeout_s: float = 1800.0
    command: tuple[str, ...] = ("claude",)
    """The executable (and fixed leading arguments) to run instead of ``claude``."""
    env: Mapping[str, str] | None = None
    """Extra environment for the child, applied after secrets are removed."""
    thread_id: str = ""
    project_key: str = ""
    warm: bool = False
    """Keep claude running after the turn for the session's next one, where the runner can
    (the direct runner's live processes); a runner that cannot runs one process per turn."""
    permissions: PermissionRelay | None = None
    """How this run asks a person (``approvals: relay``); None: what the lists do not allow is
    refused. A runner times the run with :class:`~mpg_tui.core.deadline.RunDeadline` on
    ``permissions.waits``, so time spent waiting for a person does not count."""

    @property
    def ask_permission(self) -> AskPermission | None:
        """The callable a runner holding claude's pipes answers ``can_use_tool`` with."""
        return self.permissions.ask if self.permissions is not None else None


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


@dataclass(frozen=True)
class Progress:
    step: Literal["init", "tool", "text"]
    text: str
    tool: str | None = None
    session_id: str | None = None


@dataclass(frozen=True)
class RunResult:
    ok: bool
    text: str = ""
    session_id: str | None = None
    cost_usd: float = 0.0
    usage: Usage = field(default_factory=Usage)
    duration_ms: int = 0
    num_turns: int = 0
    error: str | None = None
    """A readable sentence for the thread when ``ok`` is false."""
    error_kind: ErrorKind | None = None
    exit_code: int | None = None
    stderr_tail: str = ""


ProgressCallback = Callable[[Progress], None]


class Runner(ABC):
    """Runs claude turns. Every method is abstract: a runner says what it does for each."""

    kind: RunnerKind

    @property
    @abstractmethod
    def runs_outlive_gateway(self) -> bool:
        """True when a run goes on after the gateway stops (tmux), so shutdown detaches
        from it instead of cutting it short, and the next gateway delivers it."""

    @abstractmethod
    async def run(self, request: RunRequest, on_progress: ProgressCallback) -> RunResult:
        """Run one turn to completion (or timeout/cancel). Never raises for claude's failures."""

    @abstractmethod
    async def cancel(self, key: str) -> bool:
        """End the run in progress for ``key`` (its whole process group); False if none."""

    @abstractmethod
    async def interrupt(self, key: str) -> bool:
        """Stop the turn in progress for ``key`` without ending the session (``!stop``); False if
        none. A live process is asked to abandon the turn and stays; a runner that cannot ask
        ends the turn's process. Returns once the turn has ended."""

    @abstractmethod
    async def close(self) -> None:
        """End every run this runner owns that would not survive the gateway (direct runs)."""

    @abstractmethod
    def tmux_session(self, key: str) -> str | None:
        """The tmux session ``key``'s runs live in, or None when they are not in tmux."""

    @abstractmethod
    def attach_command(self, key: str) -> list[str] | None:
        """The argument list that attaches a terminal to ``key``'s run, or None if there is none."""

    @abstractmethod
    async def acknowledge(self, key: str) -> None:
        """The thread has the result of ``key``'s last run: drop whatever was kept to deliver it."""

    @abstractmethod
    async def release(self, key: str) -> None:
        """Session ``key`` went idle or was killed: drop whatever the runner keeps for it."""
