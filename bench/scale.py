"""Scale: how the figures grow from 10 to 1,000 sessions and from 1 to 100 projects.

One line per size, built from the other benchmarks' measurements:

* sessions: one ``mpg-tui start --no-ui`` process (10 projects) grown to 10, 100 and
  1,000 live sessions; at each size its RSS and the gateway-added latency of messages in
  an existing and in a new thread (as ``latency.py`` measures it); the cockpit with that
  many sessions under 200 events/s (``cockpit.py``) and its RSS (``memory.py``); and
  ``sessions.json`` with that many entries (``store.py``);
* projects: a gateway with 1, 10 and 100 mapped channels: spawn to READY and to the
  first reply (``startup.py``), RSS once ready, and the added latency.

    .venv/bin/python bench/scale.py [--quick]
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cockpit import EVENT_RATE, key_latency
from common import (
    GatewayProcess,
    Stats,
    Table,
    command_line,
    emit,
    fill_sessions,
    fmt_mib,
    fmt_ms,
    make_world,
    parser,
    proc_status_kib,
    quiet_logging,
)
from latency import Scenario, run_scenario
from memory import cockpit_rss
from startup import headless_starts
from store import LOAD, SAVE, measure

from mpg_tui.sandbox.discord import SandboxServer


def p50_p99(scenario: Scenario) -> list[str]:
    added = scenario.added()
    return [fmt_ms(added.p50), fmt_ms(added.p99)]


async def gateway_by_sessions(root: Path, sizes: Sequence[int], n: int) -> dict[int, list[str]]:
    """Per size: RSS and added latency (existing thread, new thread) of one growing gateway process."""
    world = make_world(root, 10, timed=True, defaults={"maxConcurrentSessions": 16})
    rows: dict[int, list[str]] = {}
    async with SandboxServer(world.spec) as sandbox, GatewayProcess(world, sandbox) as gateway:
        live = 0
        for size in sizes:
            await fill_sessions(sandbox, world, max(0, size - live), prefix=f"fill{size}")
            live = size
            rss = proc_status_kib(gateway.pid)["VmRSS"]
            existing = await run_scenario(f"existing {size}", sandbox, world, "existing", n)
            new = await run_scenario(f"new {size}", sandbox, world, "new", n)
            live += 1 + n + 3  # the scenarios' own threads (warm-up included)
            rows[size] = [fmt_mib(rss), *p50_p99(existing), *p50_p99(new)]
    return rows


async def sessions_table(root: Path, sizes: Sequence[int], n: int, presses: int, runs: int) -> Table:
    table = Table(
        "Scale by sessions",
        [
            "sessions",
            "gateway RSS MiB",
            "existing added p50",
            "p99",
            "new added p50",
            "p99",
            f"cockpit key→screen p50 ({EVENT_RATE:.0f} ev/s)",
            "p99",
            "cockpit RSS MiB",
            "store save p50",
            "store load p50",
        ],
        command_line(),
        notes=[
            "gateway: one `mpg-tui start --no-ui` process (10 projects, maxConcurrentSessions 16) grown from one "
            f"size to the next; added latency in ms over {n} messages (reply POST minus the agent's own run).",
            "cockpit: a fresh app per size on the fake core; ms from the keypress to the next frame after the "
            "detail pane changed; '-' when no press made it within the time limit.",
            "store: sessions.json with that many entries, ms (save: one entry changed).",
        ],
    )
    gateway = await gateway_by_sessions(root / "gateway", sizes, n)
    for size in sizes:
        keys = await key_latency(size, EVENT_RATE, presses)
        screen = [fmt_ms(v) for v in (Stats.ms(keys.drawn).p50, Stats.ms(keys.drawn).p99)] if keys.drawn else ["-"] * 2
        store = await measure(root, size, runs)
        table.add(
            f"{size:,}",
            *gateway[size],
            *screen,
            fmt_mib(cockpit_rss(size)["VmRSS"]),
            fmt_ms(Stats.ms(store.samples[SAVE]).p50),
            fmt_ms(Stats.ms(store.samples[LOAD]).p50),
        )
    return table


async def projects_table(root: Path, sizes: Sequence[int], n: int, starts: int, *, warmup: bool) -> Table:
    table = Table(
        "Scale by projects (mapped channels)",
        [
            "projects",
            "spawn→READY p50",
            "spawn→first reply (gateway part) p50",
            "RSS ready MiB",
            "existing added p50",
            "p99",
            "new added p50",
            "p99",
        ],
        command_line(),
        notes=[
            f"start figures: p50 of {starts} start(s) (after a warm-up start unless --quick), ms; the first "
            "reply's own agent run is subtracted.",
            f"added latency: ms over {n} messages, one gateway process per size.",
        ],
    )
    for size in sizes:
        world = make_world(root / f"projects-{size}", size, timed=True)
        started = await headless_starts(world, starts, f"p{size}", warmup=warmup)
        async with SandboxServer(world.spec) as sandbox, GatewayProcess(world, sandbox, "latency"):
            # The last project's channel: routing must find it among all the others.
            channel = world.channel_ids[-1]
            existing = await run_scenario(f"existing p{size}", sandbox, world, "existing", n, channel=channel)
            new = await run_scenario(f"new p{size}", sandbox, world, "new", n, channel=channel)
        table.add(
            size,
            fmt_ms(Stats.ms(s.ready_sent for s in started).p50),
            fmt_ms(Stats.ms(s.first_reply_added for s in started).p50),
            fmt_mib(sorted(s.rss_kib for s in started)[len(started) // 2]),
            *p50_p99(existing),
            *p50_p99(new),
        )
    return table


async def main_async(quick: bool, json_path: Path | None) -> None:
    sessions = [10, 100] if quick else [10, 100, 1000]
    projects = [1, 10] if quick else [1, 10, 100]
    n, presses, runs, starts = (5, 10, 3, 1) if quick else (20, 30, 10, 3)
    with tempfile.TemporaryDirectory(prefix="mpg-bench-scale-") as tmp:
        root = Path(tmp)
        tables = [
            await sessions_table(root / "sessions", sessions, n, presses, runs),
            await projects_table(root / "projects", projects, n, starts, warmup=not quick),
        ]
    emit(tables, json_path)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    quiet_logging()
    asyncio.run(main_async(args.quick, args.json))


if __name__ == "__main__":
    main()
