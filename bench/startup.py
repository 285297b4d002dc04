"""Start-up: ``mpg-tui --version``, and a headless gateway from spawn to Discord-ready.

``--version`` is timed hyperfine-style: warm-up runs, then N runs of the subprocess, next
to the bare interpreter for scale. The headless start is ``mpg-tui start --no-ui`` against
the sandbox in this process, timed from spawn to: the sandbox handing out READY (after
IDENTIFY), discord.py's ``on_ready`` (logged as "Gateway connected as"), and the reply to a
message posted the moment READY went out (minus that agent run: the gateway's part).

    .venv/bin/python bench/startup.py [--quick]
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import (
    STATS_COLUMNS,
    GatewayProcess,
    Stats,
    Table,
    World,
    command_line,
    emit,
    gateway_executable,
    make_world,
    parser,
    proc_status_kib,
    quiet_logging,
    reply_matches,
)

from mpg_tui.sandbox.discord import SandboxServer

SANDBOX_GATEWAY_LOGGER = "mpg_tui.sandbox.discord.gateway"
WARMUP = 2


def time_command(argv: list[str], runs: int, warmup: int = WARMUP) -> list[float]:
    """Seconds per run of ``argv`` (output discarded), after ``warmup`` runs."""
    samples = []
    for i in range(warmup + runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i >= warmup:
            samples.append(time.perf_counter() - started)
    return samples


class IdentifyWatch(logging.Handler):
    """Notes when the sandbox identified a gateway session (READY is sent in the same step)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.times: list[float] = []
        self.identified = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "identified" in record.getMessage():
            self.times.append(record.created)
            self.identified.set()

    def __enter__(self) -> IdentifyWatch:
        logger = logging.getLogger(SANDBOX_GATEWAY_LOGGER)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger(SANDBOX_GATEWAY_LOGGER)
        logger.removeHandler(self)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


@dataclass(frozen=True)
class HeadlessStart:
    """One start of ``mpg-tui start --no-ui``: seconds from spawn, and memory once ready."""

    ready_sent: float
    on_ready: float
    first_reply: float
    agent_run: float
    """The stand-in's own run time for that first reply."""
    rss_kib: int

    @property
    def first_reply_added(self) -> float:
        return self.first_reply - self.agent_run


async def headless_start(world: World, name: str) -> HeadlessStart:
    """Start a gateway, post a message the moment READY goes out, wait for its reply and on_ready."""
    async with SandboxServer(world.spec) as sandbox:
        with IdentifyWatch() as watch:
            gateway = GatewayProcess(world, sandbox, name)
            await gateway.start()
            try:
                await asyncio.wait_for(watch.identified.wait(), 30)
                after = sandbox.last_seq
                posted = time.time()
                await sandbox.post_as_user(world.channel_ids[0], world.user_id, f"[[reply:{name}]]")
                reply = await sandbox.wait_for(reply_matches(name), timeout=30, after=after)
                await gateway.wait_ready()
                rss = proc_status_kib(gateway.pid)["VmRSS"]
            finally:
                await gateway.stop()
        assert gateway.ready_at is not None
        agent = world.agent_run_within(posted, reply.at)
        spawned = gateway.spawned_at
        return HeadlessStart(
            ready_sent=watch.times[0] - spawned,
            on_ready=gateway.ready_at - spawned,
            first_reply=reply.at - spawned,
            agent_run=agent[1] - agent[0] if agent else float("nan"),
            rss_kib=rss,
        )


async def headless_starts(world: World, runs: int, label: str, *, warmup: bool = True) -> list[HeadlessStart]:
    if warmup:
        await headless_start(world, f"{label}-warmup")  # page cache, .pyc files
    return [await headless_start(world, f"{label}-{i}") for i in range(runs)]


def headless_rows(table: Table, samples: list[HeadlessStart]) -> None:
    table.add("spawn → READY sent (IDENTIFY done)", *Stats.ms(s.ready_sent for s in samples).cells())
    table.add('spawn → on_ready ("Gateway connected")', *Stats.ms(s.on_ready for s in samples).cells())
    table.add("spawn → first reply POST", *Stats.ms(s.first_reply for s in samples).cells())
    table.add("spawn → first reply POST, minus its agent run", *Stats.ms(s.first_reply_added for s in samples).cells())


async def main_async(quick: bool, json_path: Path | None) -> None:
    runs, warmup, starts = (3, 1, 1) if quick else (30, WARMUP, 8)
    mpg = gateway_executable()
    version = Table(
        "Start-up: `mpg-tui --version` (subprocess, hyperfine-style)",
        ["command", *STATS_COLUMNS],
        command_line(),
        notes=[f"{warmup} warm-up run(s) first; wall time of the whole process."],
    )
    version.add("mpg-tui --version", *Stats.ms(time_command([*mpg, "--version"], runs, warmup)).cells())
    version.add("mpg-tui --help", *Stats.ms(time_command([*mpg, "--help"], runs, warmup)).cells())
    version.add(
        "python -c pass (same interpreter)",
        *Stats.ms(time_command([sys.executable, "-c", "pass"], runs, warmup)).cells(),
    )
    version.add(
        "python -c 'import mpg_tui.runtime' (what start loads)",
        *Stats.ms(time_command([sys.executable, "-c", "import mpg_tui.runtime"], runs, warmup)).cells(),
    )
    headless = Table(
        "Start-up: `mpg-tui start --no-ui` to Discord-ready against the sandbox (10 projects)",
        ["stage", *STATS_COLUMNS],
        command_line(),
        notes=[
            "on_ready fires discord.py's guild_ready_timeout (2 s by default, not configurable in mpg-tui) after "
            "the last GUILD_CREATE; messages are handled before that, as the first-reply rows show.",
            "the message is posted the moment the sandbox sent READY; its agent run is the stand-in's own time.",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="mpg-bench-startup-") as tmp:
        world = make_world(Path(tmp), 10, timed=True, defaults={"httpPort": 0})
        headless_rows(headless, await headless_starts(world, starts, "start", warmup=not quick))
    emit([version, headless], json_path)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    quiet_logging()
    asyncio.run(main_async(args.quick, args.json))


if __name__ == "__main__":
    main()
