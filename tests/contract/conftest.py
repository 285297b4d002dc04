"""Fixtures for the contract suite: the real claude CLI, pointed at a loopback Messages API.

The CLI is the pinned version that ``scripts/ensure-claude-cli`` installs under
``.cache/claude-code``. When it is missing (or another version), the suite is skipped
with the command that installs it, unless ``CI`` is set: there, a contract suite that
silently ran nothing would prove nothing, so it fails instead.

Every test gets its own Messages API stand-in, a throwaway ``HOME`` and
``CLAUDE_CONFIG_DIR`` (claude's sessions, settings and caches), a project directory and,
for tmux, a tmux server of its own. Nothing from the developer's own claude set-up
(``ANTHROPIC_*``, ``CLAUDE_*``) reaches the CLI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from mpg_tui.config import GatewayConfig, ProjectView, parse_config
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import SystemClock
from mpg_tui.core.events import Event
from mpg_tui.core.runner import Progress, Runner, RunRequest
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.sessions_file import StoredSession
from mpg_tui.core.store import SessionStore
from mpg_tui.runners.direct import DirectRunner
from mpg_tui.runners.tmux import TmuxRunner
from tests.contract.messages_api import MessagesAPI

REPO_ROOT = Path(__file__).resolve().parents[2]
ENSURE_SCRIPT = REPO_ROOT / "scripts" / "ensure-claude-cli"
CLI_PREFIX = REPO_ROOT / ".cache" / "claude-code"
CLI_BIN = CLI_PREFIX / "node_modules" / ".bin" / "claude"
CLI_MANIFEST = CLI_PREFIX / "node_modules" / "@anthropic-ai" / "claude-code" / "package.json"

CHANNEL = "223344556677889900"
THREAD = "998877665544332211"
RUN_TIMEOUT_S = 60.0
"""A run that takes this long has hung; a normal one takes about a second."""

RunnerKind = Literal["direct", "tmux"]


def pinned_version() -> str:
    """The CLI version ``scripts/ensure-claude-cli`` installs (the one this suite was written against)."""
    found = re.search(r'^PINNED_VERSION="([^"]+)"', ENSURE_SCRIPT.read_text(encoding="utf-8"), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no PINNED_VERSION in {ENSURE_SCRIPT}")
    return found.group(1)


def installed_version() -> str | None:
    if not (CLI_BIN.exists() and CLI_MANIFEST.exists()):
        return None
    version = json.loads(CLI_MANIFEST.read_text(encoding="utf-8")).get("version")
    return str(version) if version else None


@pytest.fixture(scope="session")
def claude_cli() -> Path:
    """The pinned claude executable; skips (fails under ``CI``) when it is not installed."""
    wanted, found = pinned_version(), installed_version()
    if found != wanted:
        state = "is not installed" if found is None else f"is {found}"
        reason = (
            f"the contract suite needs @anthropic-ai/claude-code {wanted}; {CLI_BIN.relative_to(REPO_ROOT)} {state}. "
            "Run scripts/ensure-claude-cli to install it."
        )
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return CLI_BIN


@pytest.fixture(autouse=True)
def _no_claude_settings_of_our_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's claude set-up (keys, model, a parent claude session) from the CLI.

    The runners pass ``ANTHROPIC_*`` and ``CLAUDE_*`` through on purpose; here they would
    make the outcome depend on who runs the suite.
    """
    for name in list(os.environ):
        if name.upper().startswith(("ANTHROPIC_", "CLAUDE")) or name in {"DISABLE_AUTOUPDATER", "IS_SANDBOX"}:
            monkeypatch.delenv(name)


@pytest.fixture
async def api() -> AsyncIterator[MessagesAPI]:
    async with MessagesAPI() as server:
        yield server
    # A CLI release that starts calling something new should be noticed, not answered by accident.
    assert server.unknown == [], f"the CLI called routes the stand-in does not serve: {server.unknown}"


@dataclass
class ProgressLog:
    """An ``on_progress`` callback that keeps what it was given."""

    seen: list[Progress] = field(default_factory=list)

    def __call__(self, progress: Progress) -> None:
        self.seen.append(progress)

    def of(self, step: str) -> list[Progress]:
        return [p for p in self.seen if p.step == step]


@dataclass
class ClaudeWorld:
    """The real CLI, its stand-in API, a throwaway home and a project directory."""

    executable: Path
    api: MessagesAPI
    home: Path
    project: Path
    tmp_path: Path

    @property
    def config_dir(self) -> Path:
        return self.home / ".claude"

    @property
    def env(self) -> dict[str, str]:
        """What claude needs to talk to the stand-in and to nothing else, quickly."""
        return {
            "ANTHROPIC_BASE_URL": self.api.base_url,
            "ANTHROPIC_API_KEY": "test",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            # Its default is ten retries with backoff: minutes per failing test.
            "CLAUDE_CODE_MAX_RETRIES": "0",
            "HOME": str(self.home),
            "CLAUDE_CONFIG_DIR": str(self.config_dir),
        }

    def request(
        self,
        prompt: str,
        *,
        args: list[str] | None = None,
        key: str = THREAD,
        session_id: str | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> RunRequest:
        """A request for the real CLI; ``args`` default to MPG's default ``claudeArgs``."""
        return RunRequest(
            key=key,
            cwd=cwd or self.project,
            prompt=prompt,
            args=self.project_view().claude_args() if args is None else args,
            session_id=session_id,
            timeout_s=RUN_TIMEOUT_S,
            command=(str(self.executable),),
            env={**self.env, **(env or {})},
            thread_id=key.split(":")[0],
            project_key=CHANNEL,
        )

    def config(self, **project: Any) -> GatewayConfig:
        """A one-project gateway config on :attr:`project`; ``project`` adds config.json fields."""
        return parse_config({"projects": {CHANNEL: {"name": "contract", "directory": str(self.project), **project}}})

    def project_view(self, **project: Any) -> ProjectView:
        view = self.config(**project).project(CHANNEL)
        assert view is not None
        return view

    def session_files(self) -> list[Path]:
        """Every session transcript claude has written (``projects/<dir>/<id>.jsonl``)."""
        return sorted((self.config_dir / "projects").glob("*/*.jsonl"))


@pytest.fixture
def world(claude_cli: Path, api: MessagesAPI, tmp_path: Path) -> ClaudeWorld:
    home = tmp_path / "home"
    project = tmp_path / "project"
    home.mkdir()
    project.mkdir()
    return ClaudeWorld(executable=claude_cli, api=api, home=home, project=project, tmp_path=tmp_path)


@pytest.fixture
def tmux_socket() -> Iterator[str]:
    socket = f"mpg-contract-{uuid.uuid4().hex[:12]}"
    yield socket
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
    # tmux leaves the socket file behind when its server exits.
    socket_dir = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
    (socket_dir / socket).unlink(missing_ok=True)


class RunnerFactory:
    """Makes the runners a test asks for and ends them (and their tmux server) afterwards."""

    def __init__(self, tmp_path: Path, tmux_socket: str) -> None:
        self._tmp_path = tmp_path
        self._socket = tmux_socket
        self._made: list[Runner] = []

    def __call__(self, kind: RunnerKind, *, stream: bool = True) -> Runner:
        runner: Runner
        if kind == "tmux" and shutil.which("tmux") is None:
            pytest.skip("tmux is not installed")
        if kind == "direct":
            runner = DirectRunner(SystemClock(), stream=stream, kill_grace_s=0.5)
        else:
            runner = TmuxRunner(
                self._socket,
                self._tmp_path / "state" / "runs",
                clock=SystemClock(),
                kill_grace_s=0.5,
                poll_interval_s=0.05,
            )
        self._made.append(runner)
        return runner

    async def close(self) -> None:
        for runner in self._made:
            await runner.close()


@pytest.fixture
async def make_runner(tmp_path: Path, tmux_socket: str) -> AsyncIterator[RunnerFactory]:
    factory = RunnerFactory(tmp_path, tmux_socket)
    yield factory
    await factory.close()


@pytest.fixture(params=["direct", "tmux"])
def runner(request: pytest.FixtureRequest, make_runner: RunnerFactory) -> Runner:
    """Each runner in turn: the test runs once through the direct runner and once through tmux."""
    kind: RunnerKind = request.param
    return make_runner(kind)


@dataclass
class Core:
    """A SessionManager on one runner and the real CLI, with every event it published."""

    manager: SessionManager
    config: GatewayConfig
    view: ProjectView
    store: SessionStore
    bus: EventBus
    events: list[Event]

    def of(self, kind: type[Event]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


MakeCore = Callable[..., Core]


@pytest.fixture
async def make_core(world: ClaudeWorld, tmp_path: Path) -> AsyncIterator[MakeCore]:
    """``make_core(runner, stored=[...], **project)``: a core whose project runs on ``runner``.

    ``stored`` entries are in its store before it starts, as if an earlier gateway saved them.
    """
    made: list[Core] = []

    def make(runner: Runner, *, stored: tuple[StoredSession, ...] = (), **project: Any) -> Core:
        clock = SystemClock()
        config = world.config(persistence=runner.kind, **project)
        view = config.project(CHANNEL)
        assert view is not None
        store = SessionStore(tmp_path / "sessions.json", clock=clock)
        for entry in stored:
            store.put(entry)
        bus = EventBus()
        events: list[Event] = []
        bus.listen(events.append)
        manager = SessionManager(
            config=config,
            store=store,
            runners={runner.kind: runner},
            bus=bus,
            clock=clock,
            worktrees=None,
            command=(str(world.executable),),
            child_env=world.env,
        )
        core = Core(manager, config, view, store, bus, events)
        made.append(core)
        return core

    yield make
    for core in made:
        await core.manager.close()
