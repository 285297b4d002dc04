"""Fixtures for tests that run the stand-in ``claude`` (runner and agent tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mpg_tui.core.runner import RunRequest
from mpg_tui.sandbox.agent import install_shim


@dataclass
class StandIn:
    """An installed stand-in claude with its own session store and invocation log."""

    shim: Path
    config_dir: Path
    log_path: Path
    project: Path

    @property
    def env(self) -> dict[str, str]:
        return {"CLAUDE_CONFIG_DIR": str(self.config_dir), "MPG_AGENT_LOG": str(self.log_path)}

    def request(self, prompt: str, **overrides: Any) -> RunRequest:
        fields: dict[str, Any] = {
            "key": "thread-1",
            "cwd": self.project,
            "prompt": prompt,
            "args": ["--permission-mode", "acceptEdits", "--output-format", "json"],
            "command": (str(self.shim),),
            "env": self.env,
            "timeout_s": 60.0,
        }
        fields.update(overrides)
        return RunRequest(**fields)

    def invocations(self) -> list[dict[str, Any]]:
        """One entry per time the stand-in was started (orphan notes left out)."""
        if not self.log_path.exists():
            return []
        entries = [json.loads(line) for line in self.log_path.read_text(encoding="utf-8").splitlines()]
        return [e for e in entries if "argv" in e]

    def orphan_pids(self) -> list[int]:
        if not self.log_path.exists():
            return []
        entries = [json.loads(line) for line in self.log_path.read_text(encoding="utf-8").splitlines()]
        return [int(e["orphan_pid"]) for e in entries if "orphan_pid" in e]


@pytest.fixture
def stand_in(tmp_path: Path) -> StandIn:
    project = tmp_path / "project"
    project.mkdir()
    return StandIn(
        shim=install_shim(tmp_path / "bin"),
        config_dir=tmp_path / "claude-config",
        log_path=tmp_path / "agent-log.jsonl",
        project=project,
    )
