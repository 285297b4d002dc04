"""Gateway-added latency: from the sandbox posting MESSAGE_CREATE to the bot's first reply POST.

The gateway runs the stand-in ``claude`` through a bash wrapper that logs when the
stand-in started and ended (``$EPOCHREALTIME``), so each message's own agent run time is
known and subtracted: what remains is what the gateway added (receiving the message,
journaling it, the calls awaited before the spawn: the reaction and thread of a message
that opens one, the history of an agent's; spawning, reading the result, the reply POST).
In a thread the reaction and typing go out alongside the run, and are timed separately.
That is compared with a floor measured in the same run: one process spawn (``true``) plus
one loopback HTTP round trip.

Messages go one at a time (no queueing), to a gateway in this process (its own events
split the time further) and to one started as ``mpg-tui start --no-ui``. The same
messages then go to ``bench/bare_bot.py``, a discord.py bot that only spawns claude and
posts its result, run as its own process the same way: what is left when the gateway's
figure is taken from its figure is the gateway's own share on this machine.

    .venv/bin/python bench/latency.py [--quick] [--n N]
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import aiohttp
from common import (
    STATS_COLUMNS,
    BareAgent,
    GatewayProcess,
    Stats,
    Table,
    Trace,
    World,
    command_line,
    emit,
    fmt_ms,
    in_process_gateway,
    make_world,
    parser,
    percentile,
    quiet_logging,
    send_traced,
    spawn_floor,
    wrapper_start,
)

from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import SystemClock
from mpg_tui.core.events import Event, RunFinished, RunStarted
from mpg_tui.core.journal import Journal
from mpg_tui.core.ports import InboundMessage
from mpg_tui.discord_adapter.endpoint import gateway_url_for
from mpg_tui.fsutil import atomic_write
from mpg_tui.sandbox.discord import SandboxServer

Mode = Literal["existing", "new", "agent"]
GOAL_P50_MS = 3.0
GOAL_P99_MS = 20.0
JOURNAL_GOAL_P50_MS = 0.5
WARMUP = 3
ONE_TURN = {"warm": False}
"""One claude process per turn: the timing wrapper times each run, and the floor is one spawn
(warm processes are measured by ``bench/live.py``)."""


class RunWatcher:
    """Start and end (``time.time``) of every run the gateway reports on its bus, per thread."""

    def __init__(self, bus: EventBus) -> None:
        self.runs: dict[str, list[list[float]]] = {}
        bus.listen(self._on_event)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.runs.setdefault(event.thread_id, []).append([event.at, 0.0])
        elif isinstance(event, RunFinished):
            for run in reversed(self.runs.get(event.thread_id, [])):
                if not run[1]:
                    run[1] = event.at
                    break

    def window(self, thread_id: str, after: float) -> tuple[float, float] | None:
        for start, end in self.runs.get(thread_id, []):
            if start >= after and end:
                return start, end
        return None


@dataclass(frozen=True)
class Sample:
    trace: Trace
    agent: tuple[float, float]
    """The stand-in's own start and end."""
    run: tuple[float, float] | None = None
    """The gateway's RunStarted and RunFinished (in-process only)."""

    @property
    def agent_time(self) -> float:
        return self.agent[1] - self.agent[0]

    @property
    def added(self) -> float:
        return self.trace.total - self.agent_time


@dataclass
class Scenario:
    name: str
    samples: list[Sample] = field(default_factory=list)

    def added(self) -> Stats:
        return Stats.ms(s.added for s in self.samples)


async def run_scenario(
    name: str,
    sandbox: SandboxServer,
    world: World,
    mode: Mode,
    n: int,
    *,
    watcher: RunWatcher | None = None,
    channel: str | None = None,
) -> Scenario:
    """``n`` messages (after a warm-up), one at a time, each answered before the next is posted.

    ``existing``: in a thread opened beforehand; ``new``: each opens a thread; ``agent``:
    in a thread an ``@engineer`` message opened, so each goes to that agent with history.
    """
    if world.agent_times is None:
        raise ValueError("latency scenarios need a world made with timed=True")
    channel = channel or world.channel_ids[0]
    user = world.user_id
    slug = name.replace(" ", "-").replace(",", "").replace("@", "")
    target = channel
    if mode != "new":
        body = "@engineer " if mode == "agent" else ""
        target = (await send_traced(sandbox, channel, user, f"{slug}-open", body=body)).thread_id
    result = Scenario(name)
    for i in range(WARMUP + n):
        trace = await send_traced(sandbox, target, user, f"{slug}-{i}")
        if i < WARMUP:
            continue
        agent = world.agent_run_within(trace.posted, trace.reply)
        if agent is None:
            raise RuntimeError(f"{name}: no single stand-in run logged for message {i}")
        run = watcher.window(trace.thread_id, trace.posted) if watcher else None
        result.samples.append(Sample(trace, agent, run))
    return result


@dataclass
class Floor:
    """Samples, in seconds, of what the floor is made of (and of a durable write, for context)."""

    spawns: list[float] = field(default_factory=list)
    trips: list[float] = field(default_factory=list)
    durable_writes: list[float] = field(default_factory=list)
    wrapper_starts: list[float] = field(default_factory=list)


async def measure_floor(sandbox: SandboxServer, directory: Path, n: int) -> Floor:
    """Spawn of ``true``, a loopback HTTP round trip to the sandbox, an fsync'd atomic write and the
    timing wrapper's start-up, interleaved."""
    floor = Floor()
    url = f"{sandbox.api_base}/gateway"
    text = "{}\n" * 200
    async with aiohttp.ClientSession() as session:
        for i in range(WARMUP + n):
            spawn = await spawn_floor()
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
            trip = time.perf_counter() - started
            started = time.perf_counter()
            await asyncio.to_thread(atomic_write, directory / "floor.json", text)
            write = time.perf_counter() - started
            wrapper = await wrapper_start()
            if i >= WARMUP:
                floor.spawns.append(spawn)
                floor.trips.append(trip)
                floor.durable_writes.append(write)
                floor.wrapper_starts.append(wrapper)
    return floor


def goal_met(stats: Stats) -> str:
    return "yes" if stats.p50 < GOAL_P50_MS and stats.p99 < GOAL_P99_MS else "no"


def added_table(title: str, scenarios: Sequence[Scenario], floor_ms: float, notes: list[str]) -> Table:
    table = Table(
        title,
        ["scenario", "reply p50", "agent p50", *(f"added {c}" for c in STATS_COLUMNS), "p50/floor", "goal met"],
        command_line(),
        notes=notes,
    )
    for scenario in scenarios:
        added = scenario.added()
        total = Stats.ms(s.trace.total for s in scenario.samples)
        agent = Stats.ms(s.agent_time for s in scenario.samples)
        table.add(
            scenario.name,
            fmt_ms(total.p50),
            fmt_ms(agent.p50),
            *added.cells(),
            f"{added.p50 / floor_ms:.1f}x",
            goal_met(added),
        )
    return table


def stages_table(scenarios: Sequence[Scenario]) -> Table:
    table = Table(
        "Where the time goes, gateway in this process (ms since MESSAGE_CREATE, or a duration)",
        ["scenario · stage", *STATS_COLUMNS],
        command_line(),
        notes=[
            "run started / run finished: the gateway's RunStarted and RunFinished events; agent start / end: "
            "the timing wrapper around the stand-in.",
            "the spawn gap (RunStarted to the wrapper's first instruction) includes one fork+exec of bash.",
        ],
    )
    for scenario in scenarios:
        samples = scenario.samples

        def row(label: str, values: Sequence[float | None], name: str = scenario.name) -> None:
            present = [v for v in values if v is not None]
            if present:
                table.add(f"{name} · {label}", *Stats.ms(present).cells())

        def since_post(at: float | None, s: Sample) -> float | None:
            return None if at is None else at - s.trace.posted

        row("👀 reaction", [since_post(s.trace.reaction, s) for s in samples])
        row("thread created", [since_post(s.trace.thread_created, s) for s in samples])
        row("typing", [since_post(s.trace.typing, s) for s in samples])
        runs = [(s, s.run) for s in samples if s.run is not None]
        row("RunStarted", [run[0] - s.trace.posted for s, run in runs])
        row("spawn gap (duration)", [s.agent[0] - run[0] for s, run in runs])
        row("agent run (duration)", [s.agent_time for s in samples])
        row("agent end → RunFinished (duration)", [run[1] - s.agent[1] for s, run in runs])
        row("RunFinished → reply POST (duration)", [s.trace.reply - run[1] for s, run in runs])
        row("first reply POST", [s.trace.total for s in samples])
        row("added (reply - agent run)", [s.added for s in samples])
    return table


async def in_process(root: Path, n: int) -> tuple[list[Scenario], Floor]:
    plans: list[tuple[str, Mode, bool, list[str]]] = [
        ("existing thread", "existing", False, []),
        ("new thread", "new", False, []),
        ("existing thread, @agent", "agent", False, ["engineer"]),
        ("new thread, git worktree", "new", True, []),
    ]
    scenarios: list[Scenario] = []
    floor = Floor()
    for index, (name, mode, git, agents) in enumerate(plans):
        world = make_world(root / f"in-process-{index}", 1, git=git, agents=agents, timed=True, defaults=ONE_TURN)
        async with in_process_gateway(world) as gateway:
            if index == 0:
                floor = await measure_floor(gateway.sandbox, world.root, max(n, 50))
            watcher = RunWatcher(gateway.runtime.bus)
            count = max(10, n // 2) if git else n  # every message adds a worktree and a branch
            scenarios.append(await run_scenario(name, gateway.sandbox, world, mode, count, watcher=watcher))
    return scenarios, floor


async def separate_process(root: Path, n: int, *, new_thread: bool = True) -> list[Scenario]:
    world = make_world(root / "process", 1, timed=True, defaults=ONE_TURN)
    async with SandboxServer(world.spec) as sandbox, GatewayProcess(world, sandbox):
        scenarios = [await run_scenario("existing thread", sandbox, world, "existing", n)]
        if new_thread:
            scenarios.append(await run_scenario("new thread", sandbox, world, "new", n))
        return scenarios


class BareBotProcess(GatewayProcess):
    """``bench/bare_bot.py`` as its own process: the same sandbox, stand-in and timing wrapper as the gateway."""

    ready_line = "bare bot ready"

    def __init__(self, world: World, sandbox: SandboxServer) -> None:
        super().__init__(world, sandbox, name="bare-bot")
        agent = BareAgent(world, command=world.shim)  # as the gateway runs it: through the timing wrapper
        config = {
            "api_base": sandbox.api_base,
            "gateway_url": gateway_url_for(sandbox.api_base),
            "token": world.spec.token,
            "argv": agent.argv(resume=None),
            "cwd": str(agent.cwd),
            "env": self.env,
        }
        path = self.home / "bare-bot.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        self.argv = [sys.executable, str(Path(__file__).with_name("bare_bot.py")), str(path)]


async def bare_bot(root: Path, n: int) -> Scenario:
    """The same messages to ``bench/bare_bot.py``: what a bot that only spawns and replies adds."""
    world = make_world(root / "bare-bot", 1, timed=True, defaults=ONE_TURN)
    async with SandboxServer(world.spec) as sandbox, BareBotProcess(world, sandbox):
        return await run_scenario("bare discord.py bot, same conversation", sandbox, world, "existing", n)


async def bare_stand_in(root: Path, n: int) -> list[float]:
    """The stand-in spawned by us as the runner spawns it: its run time seen from outside."""
    agent = BareAgent(make_world(root / "bare", 1))
    times = [await agent.run("[[reply:ok]]", resume=i > 0) for i in range(WARMUP + n)]
    return times[WARMUP:]


def journal_cost(root: Path, n: int) -> tuple[list[float], list[float]]:
    """Per message, the journal's writes on the event loop: the claim, and the claim plus its four state changes.

    A file journal (WAL, ``synchronous=NORMAL``) as the gateway keeps it, filled as a
    message's life fills it: claimed, given its thread, queued, running, answered.
    """
    journal = Journal(root / "journal.sqlite3", SystemClock())
    claims: list[float] = []
    lives: list[float] = []
    base = 1_400_000_000_000_000_000
    for i in range(WARMUP + n):
        mid = str(base + i)
        msg = InboundMessage(
            id=mid, channel_id="1300000000000000001", author_id="7", author_name="ann", content="x" * 200
        )
        start = time.perf_counter()
        journal.claim(msg, "1300000000000000001")
        claimed = time.perf_counter()
        journal.mark(mid, "received", thread_id=mid)
        journal.mark(mid, "queued", session_key=mid)
        journal.mark(mid, "running")
        journal.mark(mid, "answered")
        done = time.perf_counter()
        if i >= WARMUP:
            claims.append(claimed - start)
            lives.append(done - start)
    journal.close()
    return claims, lives


async def main_async(n: int, json_path: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="mpg-bench-latency-") as tmp:
        root = Path(tmp)
        scenarios, floor_samples = await in_process(root, n)
        process_scenarios = await separate_process(root, n)
        bare_bot_scenario = await bare_bot(root, n)
        bare = await bare_stand_in(root, min(n, 30))
        claims, lives = journal_cost(root, max(n * 10, 1000))
    spawn, trip = Stats.ms(floor_samples.spawns), Stats.ms(floor_samples.trips)
    floor = spawn.p50 + trip.p50
    goal = f"goal: added p50 < {GOAL_P50_MS:g} ms and p99 < {GOAL_P99_MS:g} ms; floor = {fmt_ms(floor)} ms."
    floor_table = Table(
        "Floor: one process spawn plus one loopback HTTP round trip (same run)",
        ["what", *STATS_COLUMNS],
        command_line(),
        notes=[
            "every added figure includes the timing wrapper's start (one spawn of bash): the floor's spawn.",
            "the durable write is for context: the run marker in sessions.json is written alongside the spawn "
            "(without fsync), not ahead of it; a durable write's cost is the disk's and varies with other I/O.",
            "the stand-in rows are for scale: its Python start-up is most of every agent run here.",
        ],
    )
    floor_table.add("spawn `true` from asyncio and reap it", *spawn.cells())
    floor_table.add("aiohttp GET over loopback (kept-alive connection)", *trip.cells())
    floor_table.add("floor (sum of the two p50s)", fmt_ms(floor), "", "", "", "")
    floor_table.add(
        "atomic write with fsync of file and directory (off the loop)", *Stats.ms(floor_samples.durable_writes).cells()
    )
    floor_table.add(
        "spawn bash to its first instruction (the timing wrapper's start)",
        *Stats.ms(floor_samples.wrapper_starts).cells(),
    )
    floor_table.add("stand-in claude spawned by the benchmark (spawn to exit)", *Stats.ms(bare).cells())
    floor_table.add(
        "stand-in claude inside the gateway's runs (wrapper's view)",
        *Stats.ms(s.agent_time for sc in scenarios for s in sc.samples).cells(),
    )
    journal = journal_table(claims, lives)
    tables = [
        added_table(
            "Gateway-added latency (ms), gateway in this process: first reply POST minus the agent's own run",
            scenarios,
            floor,
            [
                goal,
                "projects are plain directories except the git row; worktrees are on (the default), progress is "
                "off, the dashboard is off.",
                "the sandbox, discord.py and the gateway share this one event loop (one core).",
            ],
        ),
        stages_table(scenarios),
        added_table(
            "Gateway-added latency (ms), gateway as its own `mpg-tui start --no-ui` process",
            [*process_scenarios, bare_bot_scenario],
            floor,
            [
                goal,
                "the sandbox stays in the benchmark process; the gateway logs at info to stderr and its file.",
                "the bare bot (bench/bare_bot.py) only spawns claude and posts its result: no journal, no reaction, "
                "no typing, no sessions file. Gateway minus bare bot at p50, existing thread: "
                f"{fmt_ms(process_scenarios[0].added().p50 - bare_bot_scenario.added().p50)} ms.",
            ],
        ),
        floor_table,
        journal,
    ]
    emit(tables, json_path)


def journal_table(claims: Sequence[float], lives: Sequence[float]) -> Table:
    table = Table(
        "The inbound journal's cost per message (on the event loop)",
        ["what", *STATS_COLUMNS],
        command_line(),
        notes=[
            f"goal: a message's journal writes under {JOURNAL_GOAL_P50_MS:g} ms at p50.",
            "SQLite from the standard library, WAL, synchronous=NORMAL: a commit is a write to the WAL, "
            "not an fsync; checkpoints (the WAL copied back, with an fsync) run on a thread of their own.",
        ],
    )
    table.add("claim (record before 👀; dedup by message ID)", *Stats.ms(claims).cells())
    table.add("claim + thread, queued, running, answered", *Stats.ms(lives).cells())
    return table


def journal_only(n: int, json_path: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="mpg-bench-journal-") as tmp:
        claims, lives = journal_cost(Path(tmp), n)
    emit([journal_table(claims, lives)], json_path)


async def against_bare_bot(n: int, rounds: int, json_path: Path | None) -> None:
    """The gateway as its own process and the bare bot, existing thread, alternating, ``rounds`` times each."""
    table = Table(
        "Added p50 (ms), existing thread: `mpg-tui start --no-ui` against the bare discord.py bot, alternating",
        ["round", "gateway", "bare bot", "gateway's own share"],
        command_line(),
        notes=[f"{n} messages a scenario; each round starts both afresh (their own sandbox and world)."],
    )
    shares: list[float] = []
    for index in range(rounds):
        with tempfile.TemporaryDirectory(prefix="mpg-bench-latency-") as tmp:
            gateway = (await separate_process(Path(tmp), n, new_thread=False))[0].added().p50
            bare = (await bare_bot(Path(tmp), n)).added().p50
        shares.append(gateway - bare)
        table.add(str(index + 1), fmt_ms(gateway), fmt_ms(bare), fmt_ms(gateway - bare))
    table.add("median", "", "", fmt_ms(percentile(sorted(shares), 50)))
    emit([table], json_path)


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, help="messages per scenario (default 100, 10 with --quick)")
    ap.add_argument("--journal-only", action="store_true", help="only the journal's cost, for 30 times --n messages")
    ap.add_argument(
        "--against-bare-bot", type=int, metavar="ROUNDS", help="only the own-process gateway and the bare bot"
    )
    args = ap.parse_args()
    quiet_logging()
    n = args.n or (10 if args.quick else 100)
    if args.journal_only:
        journal_only(n * 30, args.json)
    elif args.against_bare_bot:
        asyncio.run(against_bare_bot(n, args.against_bare_bot, args.json))
    else:
        asyncio.run(main_async(n, args.json))


if __name__ == "__main__":
    main()
