"""What every benchmark shares: statistics, tables, worlds, gateways, the stand-in agent, /proc.

A benchmark script measures one thing against real parts (the loopback Discord sandbox,
discord.py, the gateway in-process or as its own ``mpg-tui --no-ui`` process, the
stand-in ``claude``) and prints tables. Each table names the command that produced it;
``--json FILE`` also writes the tables as JSON, which ``run_all.py --markdown`` turns into
the tables of ``docs/benchmarks.md``.

Times are wall-clock seconds from :func:`time.time` wherever they are compared with the
sandbox's action timestamps or the gateway's event timestamps (both are ``time.time``),
and :func:`time.perf_counter` everywhere else. Statistics are reported in milliseconds;
p99 is the nearest-rank percentile (for fewer than 100 samples it is the maximum).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the cockpit benchmarks use the fake core under tests/
    sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table as RichTable  # noqa: E402

from mpg_tui.config import ProjectView, parse_config  # noqa: E402
from mpg_tui.core.runner import RunRequest  # noqa: E402
from mpg_tui.runners.command import build_argv, child_env  # noqa: E402
from mpg_tui.sandbox.agent import install_shim  # noqa: E402
from mpg_tui.sandbox.discord import Action, SandboxServer, SandboxSpec  # noqa: E402

log = logging.getLogger("bench")

USER = "alice"
READY_LINE = "Gateway connected as"
"""What the gateway logs when discord.py's ``on_ready`` fired."""
BENCH_DEFAULTS: dict[str, Any] = {"progress": "off", "httpPort": False}
"""Config defaults every benchmark world starts from: no status message, no dashboard."""
_DROPPED_ENV_PREFIXES = ("MPG_", "DISCORD", "CLAUDE_", "ANTHROPIC_")
AGENT_TIMES_ENV = "MPG_BENCH_AGENT_TIMES"
MAX_ERRORS_SHOWN = 3


# -- statistics ----------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of already sorted values."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class Stats:
    """A distribution in milliseconds."""

    n: int
    min: float
    p50: float
    p99: float
    max: float
    mean: float

    @classmethod
    def ms(cls, seconds: Iterable[float]) -> Stats:
        """Statistics of samples given in seconds, reported in milliseconds."""
        values = sorted(s * 1000 for s in seconds)
        if not values:
            raise ValueError("no samples to summarise")
        return cls(
            n=len(values),
            min=values[0],
            p50=percentile(values, 50),
            p99=percentile(values, 99),
            max=values[-1],
            mean=sum(values) / len(values),
        )

    def cells(self) -> list[str]:
        """``p50, p99, min, max, n`` as table cells."""
        return [fmt_ms(self.p50), fmt_ms(self.p99), fmt_ms(self.min), fmt_ms(self.max), str(self.n)]


STATS_COLUMNS = ["p50 ms", "p99 ms", "min ms", "max ms", "n"]


def fmt_ms(value: float) -> str:
    if abs(value) < 10:
        return f"{value:.2f}"
    if abs(value) < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def fmt_mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


# -- tables and the command line ---------------------------------------------------------


@dataclass
class Table:
    """One result table: what was measured, the numbers, and the command that measured them."""

    title: str
    columns: list[str]
    command: str
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([str(c) for c in cells])

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": self.columns,
            "rows": self.rows,
            "command": self.command,
            "notes": self.notes,
        }

    def markdown(self) -> str:
        lines = [f"#### {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        lines.append("")
        lines.append(f"Command: `{self.command}`")
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def console() -> Console:
    # Piped (run_all, make bench) rich would wrap at 80 columns; tables need more.
    return Console(width=None if sys.stdout.isatty() else 150, highlight=False)


def print_table(table: Table, out: Console | None = None) -> None:
    out = out or console()
    rich = RichTable(
        title=table.title, title_justify="left", caption=f"command: {table.command}", caption_justify="left"
    )
    for index, column in enumerate(table.columns):
        rich.add_column(column, justify="left" if index == 0 else "right", no_wrap=index == 0)
    for row in table.rows:
        rich.add_row(*row)
    out.print(rich)
    for note in table.notes:
        out.print(f"  • {note}")
    out.print()


def command_line() -> str:
    """The command that is running, as someone at the repository root would type it."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(REPO)
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(REPO)
    args: list[str] = []
    skip = False
    for arg in sys.argv[1:]:  # --json FILE only says where run_all collects the tables
        if skip or arg == "--json" or arg.startswith("--json="):
            skip = arg == "--json"
            continue
        args.append(arg)
    return shlex.join([str(python), str(script), *args])


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark script takes."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quick", action="store_true", help="a smoke run: few samples, small sizes")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the tables to FILE as JSON")
    return ap


def emit(tables: Sequence[Table], json_path: Path | None) -> None:
    """Print the tables; with ``json_path``, also write them there."""
    out = console()
    for table in tables:
        print_table(table, out)
    if json_path is not None:
        json_path.write_text(json.dumps([t.to_dict() for t in tables], indent=1), encoding="utf-8")


def quiet_logging() -> None:
    """Benchmarks print tables; only real trouble should reach stderr."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # discord.py warns about every reconnect of a client we stop on purpose.
    logging.getLogger("discord").setLevel(logging.ERROR)


# -- the machine and its processes -------------------------------------------------------


def machine() -> str:
    """One line describing this machine, for the reports."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text(encoding="utf-8").split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    return f"{os.cpu_count()} cores ({model}){memory}, Linux {platform.release()}, Python {platform.python_version()}"


def proc_status_kib(pid: int | str = "self") -> dict[str, int]:
    """``Vm*`` lines of ``/proc/<pid>/status`` in KiB (VmRSS: resident now, VmHWM: peak)."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition(":")
        if name.startswith(("Vm", "Rss")) and value.strip().endswith("kB"):
            found[name] = int(value.split()[0])
    return found


def cpu_seconds(pid: int | str = "self") -> tuple[float, float]:
    """(own user+system CPU, reaped children's user+system CPU) of a process, in seconds."""
    raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    ticks = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime) / ticks, (cutime + cstime) / ticks


# -- worlds: projects, channels, the stand-in claude --------------------------------------


@dataclass
class World:
    """Projects, their sandbox channels and the stand-in ``claude``, all under ``root``."""

    root: Path
    spec: SandboxSpec
    channel_ids: list[str]
    project_dirs: dict[str, Path]
    shim: Path
    """What the gateway runs as ``claude``: the stand-in, or the timing wrapper around it."""
    stand_in: Path
    """The stand-in's own shim."""
    claude_home: Path
    projects: dict[str, dict[str, Any]]
    defaults: dict[str, Any]

    @property
    def user_id(self) -> str:
        return self.spec.user(USER).id

    def config_data(self, **defaults: Any) -> dict[str, Any]:
        """``config.json`` as a dict; keyword arguments override ``defaults`` keys."""
        return {"defaults": {**self.defaults, **defaults}, "projects": self.projects}

    agent_times: Path | None = None
    """Where the timing wrapper around the stand-in logs each run (see :func:`make_world`)."""

    @property
    def child_env(self) -> dict[str, str]:
        """What the gateway passes to claude on top of its own environment."""
        env = {"CLAUDE_CONFIG_DIR": str(self.claude_home)}
        if self.agent_times is not None:
            env[AGENT_TIMES_ENV] = str(self.agent_times)
        return env

    def agent_runs(self) -> list[tuple[float, float]]:
        """(start, end) wall-clock times of every stand-in run so far, as the wrapper logged them."""
        if self.agent_times is None or not self.agent_times.exists():
            return []
        runs = []
        for line in self.agent_times.read_text(encoding="utf-8").splitlines():
            start, end = (float(part.replace(",", ".")) for part in line.split())
            runs.append((start, end))
        return runs

    def agent_run_within(self, start: float, end: float) -> tuple[float, float] | None:
        """The one stand-in run that started and ended between ``start`` and ``end``."""
        found = [run for run in self.agent_runs() if start <= run[0] and run[1] <= end]
        return found[0] if len(found) == 1 else None

    def view(self, channel_id: str | None = None) -> ProjectView:
        config = parse_config(self.config_data())
        view = config.project(channel_id or self.channel_ids[0])
        assert view is not None
        return view


def make_world(
    root: Path,
    projects: int,
    *,
    git: bool = False,
    agents: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
    timed: bool = False,
) -> World:
    """``projects`` project directories (git repositories with ``git``), one channel each.

    With ``timed``, ``claude`` is a bash wrapper that runs the stand-in and appends its
    start and end (``$EPOCHREALTIME``) to a log: the agent's own run time, per run. The
    wrapper's own start-up (about one process spawn) then counts as the gateway's.
    """
    root.mkdir(parents=True, exist_ok=True)
    names = [f"project-{i:03d}" for i in range(projects)]
    spec = SandboxSpec.default(names, roles=("developer",), users={USER: ["developer"]}, guild_name="bench")
    channel_ids = [spec.channel(name).id for name in names]
    project_dirs: dict[str, Path] = {}
    config_projects: dict[str, dict[str, Any]] = {}
    for name, channel_id in zip(names, channel_ids, strict=True):
        directory = root / "projects" / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "README.md").write_text(f"# {name}\n", encoding="utf-8")
        if git:
            _git_init(directory)
        project_dirs[channel_id] = directory
        entry: dict[str, Any] = {"name": name, "directory": str(directory)}
        if agents:
            entry["agents"] = list(agents)
        config_projects[channel_id] = entry
    stand_in = shim = install_shim(root / "bin")
    agent_times = None
    if timed:
        agent_times = root / "agent-times.log"
        shim = _timing_wrapper(root / "bin-timed", stand_in)
    return World(
        root=root,
        spec=spec,
        channel_ids=channel_ids,
        project_dirs=project_dirs,
        shim=shim,
        stand_in=stand_in,
        claude_home=root / "claude-home",
        projects=config_projects,
        defaults={**BENCH_DEFAULTS, **(defaults or {})},
        agent_times=agent_times,
    )


def _timing_wrapper(bin_dir: Path, shim: Path) -> Path:
    bash = shutil.which("bash")
    if bash is None:
        raise RuntimeError("the latency benchmarks need bash (for $EPOCHREALTIME)")
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "claude"
    # Not exec: the wrapper must outlive the stand-in to note when it ended.
    wrapper.write_text(
        f"#!{bash}\n"
        "start=$EPOCHREALTIME\n"
        f'{shlex.quote(str(shim))} "$@"\n'
        "status=$?\n"
        f'printf "%s %s\\n" "$start" "$EPOCHREALTIME" >> "${AGENT_TIMES_ENV}"\n'
        "exit $status\n",
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    return wrapper


def _git_init(directory: Path) -> None:
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@mpg-tui.invalid"]
    for args in (
        ["init", "--quiet", "--initial-branch=main"],
        ["add", "README.md"],
        ["commit", "--quiet", "-m", "init"],
    ):
        subprocess.run(["git", *ident, *args], cwd=directory, check=True, capture_output=True, timeout=30)


# -- the stand-in agent, run the way the gateway runs it ----------------------------------


class BareAgent:
    """The stand-in ``claude`` spawned exactly as the direct runner spawns it, but by us.

    Its wall time (spawn to exit, output read) is the agent's own run time that the
    latency benchmarks subtract from the gateway's reply time.
    """

    def __init__(self, world: World, channel_id: str | None = None, *, command: Path | None = None) -> None:
        """``command``: what runs as claude (the stand-in's own shim unless given, e.g. the timing wrapper)."""
        self.view = world.view(channel_id)
        self.cwd = Path(self.view.directory)
        self.command = (str(command or world.stand_in),)
        self.env = child_env({"CLAUDE_CONFIG_DIR": str(world.claude_home)})
        self.session_id: str | None = None

    def argv(self, *, resume: str | None, agent_prompt: str | None = None) -> list[str]:
        args = self.view.claude_args()
        if agent_prompt is not None:
            args += ["--append-system-prompt", agent_prompt]
        request = RunRequest(key="bench", cwd=self.cwd, prompt="", args=args, session_id=resume, command=self.command)
        return build_argv(request)

    async def run(self, prompt: str, *, resume: bool = False, agent_prompt: str | None = None) -> float:
        """Seconds from spawn to exit with all output read; ``resume`` continues our own session."""
        argv = self.argv(resume=self.session_id if resume else None, agent_prompt=agent_prompt)
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        out, err = await proc.communicate(prompt.encode())
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"stand-in claude failed ({proc.returncode}): {err.decode(errors='replace')[-500:]}")
        last = out.decode().strip().splitlines()[-1]
        self.session_id = json.loads(last).get("session_id") or self.session_id
        return elapsed


async def spawn_floor() -> float:
    """Seconds to spawn ``true`` from asyncio and reap it: one process spawn, nothing else."""
    true = shutil.which("true") or "/bin/true"
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        true, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    await proc.communicate()
    return time.perf_counter() - started


async def wrapper_start() -> float:
    """Seconds from spawning bash to its first instruction: the timing wrapper's own start-up."""
    bash = shutil.which("bash") or "/bin/bash"
    started = time.time()
    proc = await asyncio.create_subprocess_exec(
        bash, "-c", 'printf %s "$EPOCHREALTIME"', stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return float(out.decode().replace(",", ".")) - started


# -- gateways: in this process, or as an mpg-tui process ----------------------------------


@dataclass
class InProcessGateway:
    sandbox: SandboxServer
    runtime: Any  # mpg_tui.runtime.Runtime (imported lazily: it pulls in discord.py)


@asynccontextmanager
async def in_process_gateway(
    world: World,
    *,
    claude_command: Sequence[str] | None = None,
    claude_env: Mapping[str, str] | None = None,
    **defaults: Any,
) -> AsyncIterator[InProcessGateway]:
    """The sandbox and a whole gateway (:class:`~mpg_tui.runtime.Runtime`) in this event loop.

    ``claude_command`` and ``claude_env`` run another ``claude`` than the world's stand-in
    (the real CLI, for ``bench/live.py``)."""
    from mpg_tui.discord_adapter.endpoint import restore_discord_endpoints
    from mpg_tui.runtime import Runtime, RuntimeSettings

    sandbox = SandboxServer(world.spec)
    await sandbox.start()
    settings = RuntimeSettings(
        config=parse_config(world.config_data(**defaults)),
        token=world.spec.token,
        sessions_path=world.root / "sessions.json",
        run_dir=world.root / "run",
        api_base=sandbox.api_base,
        dashboard=False,
        claude_command=tuple(claude_command) if claude_command else (str(world.shim),),
        child_env=dict(claude_env) if claude_env is not None else world.child_env,
        guild_ready_timeout=0.05,
    )
    runtime = Runtime(settings)
    task = asyncio.create_task(runtime.run(), name="bench-gateway")
    try:
        ready = asyncio.create_task(runtime.client.ready.wait())
        done, _ = await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if task in done:
                task.result()
            raise TimeoutError("the in-process gateway did not become ready")
        yield InProcessGateway(sandbox, runtime)
    finally:
        runtime.request_stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
        await sandbox.stop()
        restore_discord_endpoints()


def gateway_executable() -> list[str]:
    """``mpg-tui`` as installed next to this interpreter (else ``python -m mpg_tui``)."""
    script = Path(sys.executable).with_name("mpg-tui")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mpg_tui"]


class GatewayProcess:
    """``mpg-tui start --no-ui`` as its own process, pointed at a sandbox in this one."""

    ready_line = READY_LINE
    """What the process writes to stderr once it is connected."""

    def __init__(self, world: World, sandbox: SandboxServer, name: str = "gateway", **defaults: Any) -> None:
        self.world = world
        self.sandbox = sandbox
        self.home = world.root / name
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_path = self.home / "config.json"
        config = world.config_data(discordApiBase=sandbox.api_base, **defaults)
        self.config_path.write_text(json.dumps(config, indent=1), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_DROPPED_ENV_PREFIXES)}
        env.update(
            PATH=os.pathsep.join([str(world.shim.parent), env.get("PATH", "")]),
            DISCORD_BOT_TOKEN=world.spec.token,
            MPG_HOME=str(self.home / "mpg-home"),
            MPG_TUI_STATE_DIR=str(self.home / "state"),
            MPG_TUI_LOG_DIR=str(self.home / "logs"),
            **world.child_env,
        )
        self.env = env
        self.argv = [*gateway_executable(), "start", "--no-ui", "--config", str(self.config_path)]
        self.proc: asyncio.subprocess.Process | None = None
        self.spawned_at = 0.0
        self.ready_at: float | None = None
        self.ready = asyncio.Event()
        self.exited = asyncio.Event()
        self.errors = 0
        """Error lines the gateway logged (the first few are passed on as warnings)."""
        self._tail: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("the gateway process has not been started")
        return self.proc.pid

    async def start(self) -> None:
        self.spawned_at = time.time()
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read_stderr(), name="gateway-stderr")

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self._tail = [*self._tail[-40:], line]
            if self.ready_line in line and self.ready_at is None:
                self.ready_at = time.time()
                self.ready.set()
            elif " error " in line or line.startswith("Traceback"):
                self.errors += 1
                if self.errors <= MAX_ERRORS_SHOWN:
                    log.warning("gateway: %s", line)
        self.exited.set()

    async def wait_ready(self, timeout: float = 30.0) -> None:
        ready = asyncio.create_task(self.ready.wait())
        exited = asyncio.create_task(self.exited.wait())
        done, pending = await asyncio.wait({ready, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if ready not in done:
            tail = "\n".join(self._tail[-15:])
            raise RuntimeError(f"mpg-tui did not become ready (exited: {self.exited.is_set()}):\n{tail}")

    async def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
        return self.proc.returncode

    async def __aenter__(self) -> GatewayProcess:
        await self.start()
        try:
            await self.wait_ready()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# -- talking to the gateway through the sandbox ---------------------------------------------


@dataclass(frozen=True)
class Trace:
    """One message's way through the gateway, as wall-clock times (``time.time``)."""

    posted: float
    message_id: str
    thread_id: str
    reply: float
    reaction: float | None
    thread_created: float | None
    typing: float | None

    @property
    def total(self) -> float:
        return self.reply - self.posted


def reply_matches(tag: str) -> Callable[[Action], bool]:
    return lambda a: a.kind == "message_sent" and a.text == tag


async def send_traced(
    sandbox: SandboxServer, channel_id: str, user_id: str, tag: str, *, body: str = "", timeout: float = 60.0
) -> Trace:
    """Post ``[[reply:tag]]`` (after ``body``) and wait for the bot's reply; one message at a time."""
    after = sandbox.last_seq
    content = f"{body}[[reply:{tag}]]"
    posted = time.time()
    message = await sandbox.post_as_user(channel_id, user_id, content)
    reply = await sandbox.wait_for(reply_matches(tag), timeout=timeout, after=after)
    actions = sandbox.action_log.snapshot(after)

    def first(kind: str, where: Callable[[Action], bool]) -> float | None:
        return next((a.at for a in actions if a.kind == kind and where(a)), None)

    return Trace(
        posted=posted,
        message_id=str(message["id"]),
        thread_id=reply.channel_id,
        reply=reply.at,
        reaction=first("reaction", lambda a: a.message_id == message["id"]),
        thread_created=first("thread_created", lambda a: a.message_id == message["id"]),
        typing=first("typing", lambda a: a.channel_id == reply.channel_id),
    )


async def fill_sessions(
    sandbox: SandboxServer, world: World, count: int, *, prefix: str, idle_timeout: float = 60.0
) -> list[str]:
    """Open ``count`` threads (one session each) spread over the world's channels.

    Each channel gets its next opening message once the previous one's turn has started
    (the bot's typing call in the new thread), so the channels work in parallel but no
    channel ever has two messages in intake at once. Returns the thread IDs once every
    opening message was answered; raises if the bot stops acting for ``idle_timeout``.
    """
    channels = world.channel_ids
    waiting: dict[str, list[str]] = {c: [] for c in channels}
    for i in range(count):
        waiting[channels[i % len(channels)]].append(f"{prefix}-{i}")
    tags = {tag for queue in waiting.values() for tag in queue}
    openers: dict[str, str] = {}  # opener message id -> channel
    thread_channel: dict[str, str] = {}  # new thread -> its channel, until its turn started

    async def post_next(channel: str) -> None:
        if waiting[channel]:
            message = await sandbox.post_as_user(channel, world.user_id, f"[[reply:{waiting[channel].pop(0)}]]")
            openers[str(message["id"])] = channel

    seen = sandbox.last_seq
    for channel in channels:
        await post_next(channel)
    threads: list[str] = []
    while tags:
        try:
            action = await sandbox.wait_for(lambda _a: True, timeout=idle_timeout, after=seen)
        except TimeoutError:
            raise RuntimeError(f"filling sessions: {len(tags)} of {count} opening messages not answered") from None
        seen = action.seq
        if action.kind == "thread_created" and action.message_id in openers:
            thread_channel[str(action.payload["id"])] = openers.pop(action.message_id)
        elif action.kind == "typing" and action.channel_id in thread_channel:
            await post_next(thread_channel.pop(action.channel_id))
        elif action.kind == "message_sent" and action.text in tags:
            tags.discard(action.text)
            threads.append(action.channel_id)
    return threads
