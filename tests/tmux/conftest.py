"""Fixtures for the tmux runner tests: a throwaway tmux socket, the stand-in claude, helpers.

Every test gets a tmux server of its own (a unique ``-L`` socket name), killed when the
test ends whatever happened, so tests never see each other's sessions.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mpg_tui.core.clock import Clock, FakeClock
from mpg_tui.core.runner import Progress, RunRequest
from mpg_tui.runners.tmux import TmuxRunner
from mpg_tui.sandbox.agent import install_shim

if shutil.which("tmux") is None:  # pragma: no cover - tmux is on every machine we test on
    pytest.skip("tmux is not installed", allow_module_level=True)

WAIT_S = 10.0
"""Upper bound for awaiting anything in these tests; reaching it means a failure."""


def tmux(socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=False)


def tmux_sessions(socket: str) -> list[str]:
    """Names of the sessions on ``socket`` (none when its server is not running)."""
    listing = tmux(socket, "list-sessions", "-F", "#{session_name}")
    return listing.stdout.split() if listing.returncode == 0 else []


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting for a parent to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def until(condition: Callable[[], bool], *, timeout: float = WAIT_S, what: str = "condition") -> None:
    """Await ``condition`` becoming true (checked every 20 ms); fail after ``timeout``."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


@dataclass
class ProgressLog:
    """An ``on_progress`` callback that remembers what it saw and can be awaited."""

    seen: list[Progress] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, progress: Progress) -> None:
        self.seen.append(progress)
        self._changed.set()

    async def first(self, step: str | None = None) -> Progress:
        """The first progress (of ``step``, if given), awaiting it if need be."""

        async def find() -> Progress:
            while True:
                for progress in self.seen:
                    if step is None or progress.step == step:
                        return progress
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(find(), WAIT_S)


@dataclass
class TmuxWorld:
    """A tmux socket, a run directory, a project, and the stand-in claude."""

    socket: str
    run_dir: Path
    project: Path
    shim: Path
    config_dir: Path
    agent_log: Path
    clock: FakeClock

    def runner(self, *, clock: Clock | None = None, **options: Any) -> TmuxRunner:
        options.setdefault("kill_grace_s", 0.5)
        options.setdefault("poll_interval_s", 0.05)
        return TmuxRunner(self.socket, self.run_dir, clock=clock or self.clock, **options)

    def request(self, prompt: str, **overrides: Any) -> RunRequest:
        fields: dict[str, Any] = {
            "key": "1001",
            "cwd": self.project,
            "prompt": prompt,
            "args": ["--output-format", "json"],
            "command": (str(self.shim),),
            "env": {"CLAUDE_CONFIG_DIR": str(self.config_dir), "MPG_AGENT_LOG": str(self.agent_log)},
            "timeout_s": 60.0,
            "thread_id": "1001",
            "project_key": "42",
        }
        fields.update(overrides)
        return RunRequest(**fields)

    def sessions(self) -> list[str]:
        return tmux_sessions(self.socket)

    def run_files(self) -> list[str]:
        """Everything under the run directory, relative to it."""
        if not self.run_dir.exists():
            return []
        return sorted(str(path.relative_to(self.run_dir)) for path in self.run_dir.rglob("*"))

    def agent_entries(self) -> list[dict[str, Any]]:
        if not self.agent_log.exists():
            return []
        return [json.loads(line) for line in self.agent_log.read_text(encoding="utf-8").splitlines()]

    def claude_pids(self) -> list[int]:
        """Pids of every stand-in claude started, and of the orphans they left."""
        pids = []
        for entry in self.agent_entries():
            pids.append(int(entry["orphan_pid"] if "orphan_pid" in entry else entry["pid"]))
        return pids


@pytest.fixture
def tmux_socket() -> Iterator[str]:
    socket = f"mpg-test-{uuid.uuid4().hex[:12]}"
    yield socket
    tmux(socket, "kill-server")
    # tmux leaves the socket file behind when its server exits.
    socket_dir = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
    (socket_dir / socket).unlink(missing_ok=True)


@pytest.fixture
def world(tmp_path: Path, tmux_socket: str) -> TmuxWorld:
    project = tmp_path / "project"
    project.mkdir()
    return TmuxWorld(
        socket=tmux_socket,
        run_dir=tmp_path / "state" / "runs",
        project=project,
        shim=install_shim(tmp_path / "bin"),
        config_dir=tmp_path / "claude-config",
        agent_log=tmp_path / "agent-log.jsonl",
        clock=FakeClock(),
    )
