"""Run ``mpg-tui --no-ui`` as a real process against a sandbox, for end-to-end tests.

:func:`write_profile` lays out everything one gateway instance needs in a temporary
folder: a ``config.json`` whose ``discordApiBase`` points at the sandbox, one project
directory per mapped channel, the stand-in ``claude`` in a ``bin/`` that goes first on
``PATH``, and an environment with the bot token, private state and log folders and an
``MPG_AGENT_LOG`` that records every claude invocation. :class:`GatewayProcess` starts
``python -m mpg_tui --no-ui --config <path>`` with that environment, knows it is ready
when it logs that it connected, and stops it with SIGTERM, reporting the exit code.
:class:`Chat` is the other side: it posts as a sandbox member and awaits what the bot
does. Nothing here sleeps for a fixed time: it waits on the sandbox's action log, the
child's output and its exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpg_tui.locations import Locations, resolve_locations
from mpg_tui.sandbox.agent import install_shim, user_part
from mpg_tui.sandbox.discord import Action, SandboxFile, SandboxServer

READY_LINE = "Gateway connected as"
"""What the gateway logs once discord.py's ``on_ready`` fired: messages are handled from then on."""
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
WAIT_S = 30.0
"""How long a test waits for the bot to do something; generous, since it is never used up when all is well."""
# Variables of the test runner's own environment that would change what the gateway or
# the stand-in does; the profile sets the ones it needs itself.
_INHERITED_PREFIXES_DROPPED = ("MPG_", "DISCORD", "CLAUDE_", "ANTHROPIC_")


@dataclass(frozen=True)
class Invocation:
    """One run of the stand-in ``claude``, as ``MPG_AGENT_LOG`` recorded it."""

    argv: list[str]
    cwd: str
    prompt: str | None
    pid: int
    env_names: list[str]

    @property
    def resumed(self) -> str | None:
        """The session ID passed with ``--resume``, if any."""
        for flag in ("--resume", "-r"):
            if flag in self.argv:
                index = self.argv.index(flag)
                return self.argv[index + 1] if index + 1 < len(self.argv) else None
        return None

    @property
    def system_prompt(self) -> str:
        if "--append-system-prompt" in self.argv:
            return self.argv[self.argv.index("--append-system-prompt") + 1]
        return ""


class AgentLog:
    """The ``MPG_AGENT_LOG`` file: one JSON line per stand-in invocation."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def invocations(self, where: Callable[[Invocation], bool] = lambda _i: True) -> list[Invocation]:
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if "argv" not in entry:
                continue  # an ``orphan_pid`` note, not an invocation
            invocation = Invocation(
                argv=entry["argv"],
                cwd=entry["cwd"],
                prompt=entry["prompt"],
                pid=entry["pid"],
                env_names=entry["env"],
            )
            if where(invocation):
                found.append(invocation)
        return found

    def in_dir(self, cwd: Path) -> list[Invocation]:
        """Invocations that ran in ``cwd`` (a project directory), oldest first."""
        return self.invocations(lambda i: Path(i.cwd) == cwd)

    def mentioning(self, marker: str) -> list[Invocation]:
        """Invocations whose prompt contains ``marker`` anywhere (thread history included)."""
        return self.invocations(lambda i: marker in (i.prompt or ""))

    def asked(self, marker: str) -> list[Invocation]:
        """Invocations whose own request (the prompt after any thread history) contains ``marker``."""
        return self.invocations(lambda i: marker in user_part(i.prompt or ""))


@dataclass(frozen=True)
class Profile:
    """Everything one gateway instance uses; ``env`` is the whole environment of its process."""

    root: Path
    config_path: Path
    env: dict[str, str]
    agent_log: AgentLog
    claude_home: Path
    locations: Locations
    projects: dict[str, Path]
    """Project directory by the name given to :func:`write_profile`."""

    @property
    def log_file(self) -> Path:
        return self.locations.log_file

    @property
    def sessions_path(self) -> Path:
        assert self.locations.sessions_path is not None
        return self.locations.sessions_path

    @property
    def pid_file(self) -> Path:
        return self.locations.pid_file

    def _claude_session_files(self, project: str) -> list[Path]:
        cwd = str(self.projects[project])
        return sorted((self.claude_home / "projects" / cwd.replace("/", "-")).glob("*.jsonl"))

    def claude_sessions(self, project: str) -> list[str]:
        """IDs of the stand-in's claude sessions made in a project's directory."""
        return [path.stem for path in self._claude_session_files(project)]

    def claude_session_started_by(self, project: str, prompt: str) -> str:
        """The ID of the claude session whose first prompt was ``prompt``."""
        found = []
        for path in self._claude_session_files(project):
            first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
            if first["message"]["content"] == prompt:
                found.append(path.stem)
        if len(found) != 1:
            raise LookupError(f"expected one claude session started by {prompt!r}, found {found}")
        return found[0]

    def stored_sessions(self) -> dict[str, Any]:
        """``sessions.json`` as the gateway last wrote it, by session key (raises if it is not
        valid JSON or not MPG's array form)."""
        data = json.loads(self.sessions_path.read_text(encoding="utf-8"))
        assert isinstance(data, list), "sessions.json must be MPG's array form"
        return {item["projectKey"]: item for item in data}


def write_profile(
    root: Path,
    *,
    api_base: str,
    token: str,
    projects: Mapping[str, tuple[str, Mapping[str, Any]]],
    defaults: Mapping[str, Any] | None = None,
) -> Profile:
    """Write a gateway profile under ``root`` and return it.

    ``projects`` maps a channel ID to ``(name, options)``: the project gets the directory
    ``root/projects/<name>`` and ``options`` are further ``projects.<id>`` keys
    (``agents``, ``allowedRoles``, ...). ``defaults`` are merged over quiet test defaults:
    no dashboard, no worktrees.
    """
    root.mkdir(parents=True, exist_ok=True)
    directories: dict[str, Path] = {}
    config_projects: dict[str, Any] = {}
    for channel_id, (name, options) in projects.items():
        directory = root / "projects" / name
        directory.mkdir(parents=True, exist_ok=True)
        directories[name] = directory
        config_projects[channel_id] = {"name": name, "directory": str(directory), **options}
    config = {
        "defaults": {"httpPort": False, "worktrees": False, "discordApiBase": api_base, **(defaults or {})},
        "projects": config_projects,
    }
    profile_dir = root / "profile"
    profile_dir.mkdir(parents=True, exist_ok=True)
    config_path = profile_dir / "config.json"
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")

    shim_dir = install_shim(root / "bin").parent
    claude_home = root / "claude-home"
    agent_log = root / "agent-log.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_INHERITED_PREFIXES_DROPPED)}
    env.update(
        PATH=os.pathsep.join([str(shim_dir), env.get("PATH", "")]),
        DISCORD_BOT_TOKEN=token,
        MPG_HOME=str(root / "mpg-home"),
        MPG_TUI_STATE_DIR=str(root / "state"),
        MPG_TUI_LOG_DIR=str(root / "logs"),
        MPG_AGENT_LOG=str(agent_log),
        CLAUDE_CONFIG_DIR=str(claude_home),
        PYTHONUNBUFFERED="1",
    )
    return Profile(
        root=root,
        config_path=config_path,
        env=env,
        agent_log=AgentLog(agent_log),
        claude_home=claude_home,
        locations=resolve_locations(str(config_path), None, cwd=profile_dir, env=env),
        projects=directories,
    )


class GatewayExited(RuntimeError):
    """The gateway process ended while a test still needed it."""


class _Output:
    """Lines a child process writes to one pipe, kept and awaitable."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self.closed = False

    @property
    def text(self) -> str:
        return "".join(self.lines)

    async def pump(self, stream: asyncio.StreamReader) -> None:
        while True:
            raw = await stream.readline()
            async with self._changed:
                if raw:
                    self.lines.append(raw.decode("utf-8", errors="replace"))
                else:
                    self.closed = True
                self._changed.notify_all()
            if not raw:
                return

    def count(self, needle: str) -> int:
        return sum(needle in line for line in self.lines)

    async def wait_for(self, needle: str, timeout: float) -> None:
        """Until a line contains ``needle``; raises :class:`GatewayExited` if the pipe closes first."""
        await self.wait_for_count(needle, 1, timeout)

    async def wait_for_count(self, needle: str, count: int, timeout: float) -> None:
        """Until ``count`` lines contain ``needle``."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: self.closed or self.count(needle) >= count)
        except TimeoutError:
            raise TimeoutError(f"{needle!r} not seen {count}x within {timeout}s:\n{self.text[-3000:]}") from None
        if self.count(needle) < count:
            raise GatewayExited(f"the gateway's output ended before {needle!r} was seen {count}x:\n{self.text[-3000:]}")


class GatewayProcess:
    """One ``python -m mpg_tui ...`` child process: the gateway, or another command of the profile."""

    def __init__(self, profile: Profile, process: asyncio.subprocess.Process) -> None:
        self.profile = profile
        self.process = process
        self.stdout = _Output()
        self.stderr = _Output()
        assert process.stdout is not None and process.stderr is not None
        self._pumps = [
            asyncio.create_task(self.stdout.pump(process.stdout), name="gateway-stdout"),
            asyncio.create_task(self.stderr.pump(process.stderr), name="gateway-stderr"),
        ]

    @classmethod
    async def spawn(cls, profile: Profile, *args: str) -> GatewayProcess:
        """Start ``python -m mpg_tui <args>`` (default: ``--no-ui --config <profile's config>``)."""
        argv = args or ("--no-ui", "--config", str(profile.config_path))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mpg_tui",
            *argv,
            cwd=profile.config_path.parent,
            env=profile.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(profile, process)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Wait until the bot is connected and handling messages."""
        await self.stderr.wait_for(READY_LINE, timeout)

    async def wait_exit(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """The exit code, once the process has ended and its output is read."""
        try:
            async with asyncio.timeout(timeout):
                code = await self.process.wait()
                await asyncio.gather(*self._pumps)
        except TimeoutError:
            raise TimeoutError(f"the gateway did not exit within {timeout}s:\n{self.stderr.text[-3000:]}") from None
        return code

    async def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then the exit code."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await self.wait_exit(timeout)

    async def kill(self) -> None:
        """End the process for good (test clean-up after a failure)."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        with contextlib.suppress(TimeoutError):
            await self.wait_exit(10)
        for pump in self._pumps:
            pump.cancel()


@asynccontextmanager
async def running_gateway(profile: Profile) -> AsyncIterator[GatewayProcess]:
    """A ready gateway; killed on exit unless the test already stopped it."""
    gateway = await GatewayProcess.spawn(profile)
    try:
        await gateway.wait_ready()
        yield gateway
    finally:
        await gateway.kill()


async def run_cli(profile: Profile, *args: str, timeout: float = STOP_TIMEOUT_S) -> tuple[int, str, str]:
    """Run another ``mpg-tui`` command with the profile's environment: (exit code, stdout, stderr)."""
    process = await GatewayProcess.spawn(profile, *args)
    try:
        code = await process.wait_exit(timeout)
    finally:
        await process.kill()
    return code, process.stdout.text, process.stderr.text


def process_alive(pid: int) -> bool:
    """Whether ``pid`` names a live process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


# -- the other side of the chat ---------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    """A message a user posted, and the newest bot action before it."""

    id: str
    channel_id: str
    content: str
    seq: int


class Chat:
    """The test's side of the conversation: post as a member, await what the bot does."""

    def __init__(self, sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self.spec = sandbox.spec

    def channel(self, name: str) -> str:
        return self.spec.channel(name).id

    async def post(
        self, channel_id: str, content: str, *, user: str = "alice", attachments: tuple[SandboxFile, ...] = ()
    ) -> Posted:
        seq = self.sandbox.last_seq
        message = await self.sandbox.post_as_user(channel_id, self.spec.user(user).id, content, attachments=attachments)
        return Posted(message["id"], channel_id, content, seq)

    async def wait(self, predicate: Callable[[Action], bool], after: int) -> Action:
        return await self.sandbox.wait_for(predicate, WAIT_S, after=after)

    async def thread_for(self, posted: Posted) -> str:
        """The thread the bot opened on ``posted``."""
        action = await self.wait(lambda a: a.kind == "thread_created" and a.message_id == posted.id, after=posted.seq)
        return str(action.payload["id"])

    async def sent(self, channel_id: str, text: str, after: int) -> Action:
        """The bot's first message in ``channel_id`` after ``after`` that reads exactly ``text``."""
        return await self.wait(
            lambda a: a.kind == "message_sent" and a.channel_id == channel_id and a.text == text, after=after
        )

    async def sent_starting(self, channel_id: str, prefix: str, after: int) -> Action:
        return await self.wait(
            lambda a: a.kind == "message_sent" and a.channel_id == channel_id and a.text.startswith(prefix),
            after=after,
        )

    def actions_in(self, channel_id: str, after: int = 0) -> list[Action]:
        return [a for a in self.sandbox.action_log.snapshot(after) if a.channel_id == channel_id]


async def open_thread(chat: Chat, channel_id: str, reply: str, ask: str, *, user: str = "alice") -> tuple[Posted, str]:
    """Post ``[[reply:<reply>]] <ask>`` in a channel; the message and the thread it got answered in."""
    posted = await chat.post(channel_id, f"[[reply:{reply}]] {ask}", user=user)
    thread_id = await chat.thread_for(posted)
    await chat.sent(thread_id, reply, posted.seq)
    return posted, thread_id
