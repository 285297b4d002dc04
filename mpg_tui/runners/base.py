"""What a runner is: run one claude turn for a session key and report progress.

Both runners (direct subprocess and tmux) take a :class:`RunRequest`, call
``on_progress`` for each stream-json line worth showing, and return a :class:`RunResult`
parsed by the one shared parser in :mod:`mpg_tui.runners.parse`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from mpg_tui.core.events import RunnerKind

ErrorKind = Literal[
    "auth",  # not logged in / 401
    "usage_limit",  # plan usage limit reached
    "rate_limit",  # 429
    "overloaded",  # 529 / 500-class API errors
    "api",  # any other API error
    "max_turns",  # --max-turns exhausted
    "timeout",  # we killed it
    "empty",  # exited 0 but said nothing usable
    "crash",  # non-zero exit, garbage, or killed by a signal
    "session_not_found",  # --resume could not find the session
    "missing_cli",  # claude is not on PATH
    "cancelled",  # killed by !kill / the cockpit
    "detached",  # the gateway stopped watching a tmux run that goes on; the next one delivers it
]


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


class Runner(Protocol):
    kind: RunnerKind

    async def run(self, request: RunRequest, on_progress: ProgressCallback) -> RunResult:
        """Run one turn to completion (or timeout/cancel). Never raises for claude's failures."""

    async def cancel(self, key: str) -> bool:
        """End the run in progress for ``key`` (its whole process group); False if none."""

    async def close(self) -> None:
        """End every run this runner owns that would not survive the gateway (direct runs)."""
