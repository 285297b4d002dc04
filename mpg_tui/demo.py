"""``mpg-tui demo``: the whole gateway on a fresh machine, with no token and no Claude account.

Builds a throwaway world: two git projects (one with pm and engineer agents), the
loopback Discord sandbox with a channel for each, a config mapping them, and the stand-in
agent as ``claude`` (unless the real one is asked for). Everything lives in one temporary
directory that is removed on exit.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpg_tui.config import GatewayConfig, parse_config
from mpg_tui.sandbox.agent import install_shim
from mpg_tui.sandbox.discord.spec import SandboxSpec

DEMO_CHANNELS = ("webshop", "billing-api", "general")
DEMO_USER = "you"
SAMPLE_PROMPT = "@pm add a dark-mode toggle to the settings page"


@dataclass
class DemoWorld:
    root: Path
    spec: SandboxSpec
    config: GatewayConfig
    claude_command: tuple[str, ...]
    child_env: dict[str, str]
    channels: list[tuple[str, str]]
    """(channel id, label) of the mapped channels, for the cockpit's chat box."""

    @property
    def user_id(self) -> str:
        return next(u.id for u in self.spec.users if u.username == DEMO_USER)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=mpg-tui demo", "-c", "user.email=demo@mpg-tui.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=30,
    )


def _make_project(root: Path, name: str, readme: str) -> Path:
    path = root / "projects" / name
    path.mkdir(parents=True)
    (path / "README.md").write_text(readme, encoding="utf-8")
    if shutil.which("git"):
        _git(path, "init", "--quiet", "--initial-branch=main")
        _git(path, "add", "README.md")
        _git(path, "commit", "--quiet", "-m", "Initial commit")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def build_world(*, real_claude: bool = False, dashboard_port: int | None = None) -> DemoWorld:
    root = Path(tempfile.mkdtemp(prefix="mpg-tui-demo-"))
    try:
        spec = SandboxSpec.default(
            DEMO_CHANNELS,
            roles=("developer",),
            users={DEMO_USER: ["developer"], "sam": []},
            guild_name="mpg-tui demo",
        )
        ids = {c.name: c.id for c in spec.channels}
        webshop = _make_project(root, "webshop", "# webshop\n\nA small shop front.\n")
        billing = _make_project(root, "billing-api", "# billing-api\n\nInvoices and payments.\n")
        data: dict[str, Any] = {
            "defaults": {
                "maxConcurrentSessions": 4,
                "httpPort": dashboard_port if dashboard_port is not None else free_port(),
                "claudeArgs": ["--permission-mode", "acceptEdits", "--output-format", "json"],
            },
            "projects": {
                ids["webshop"]: {"name": "webshop", "directory": str(webshop), "agents": ["pm", "engineer"]},
                ids["billing-api"]: {"name": "billing-api", "directory": str(billing)},
            },
        }
        child_env = {"CLAUDE_CONFIG_DIR": str(root / "claude-home")}
        if real_claude:
            found = shutil.which("claude")
            if found is None:
                raise RuntimeError("--real-claude was asked for, but `claude` is not on PATH")
            command: tuple[str, ...] = (found,)
            child_env = {}
        else:
            command = (str(install_shim(root / "bin")),)
            child_env["MPG_AGENT_MODE"] = "demo"
        return DemoWorld(
            root=root,
            spec=spec,
            config=parse_config(data),
            claude_command=command,
            child_env=child_env,
            channels=[(ids["webshop"], "#webshop"), (ids["billing-api"], "#billing-api")],
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
