"""Memory: resident size (RSS, from /proc) of the headless gateway and of the cockpit.

Headless: ``mpg-tui start --no-ui`` (10 projects, dashboard on) idle after Discord-ready,
then with 10, 100 and 1,000 live sessions (each opened by a message in a new thread,
answered by the stand-in). Cockpit: the real app (``make_app``) on the sandbox world
(the real gateway on an in-memory chat and scripted runs) with 0, 10, 100 and 1,000
sessions, run headless through ``App.run_test`` in a fresh process per size, measured
once the screen has been composed and rendered (the process holds the gateway too).

    .venv/bin/python bench/memory.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from common import (
    GatewayProcess,
    Table,
    command_line,
    emit,
    fill_sessions,
    fmt_mib,
    make_world,
    parser,
    proc_status_kib,
    quiet_logging,
)

from mpg_tui.sandbox.discord import SandboxServer

COCKPIT_SIZE = (200, 50)


async def headless_growth(root: Path, sizes: Sequence[int], projects: int = 10) -> list[tuple[int, dict[str, int]]]:
    """RSS of one gateway process idle (0) and after reaching each number of live sessions."""
    world = make_world(root, projects, defaults={"httpPort": 0, "maxConcurrentSessions": 16})
    found: list[tuple[int, dict[str, int]]] = []
    async with SandboxServer(world.spec) as sandbox, GatewayProcess(world, sandbox) as gateway:
        found.append((0, proc_status_kib(gateway.pid)))
        live = 0
        for size in sizes:
            await fill_sessions(sandbox, world, size - live, prefix=f"s{size}")
            live = size
            found.append((size, proc_status_kib(gateway.pid)))
    return found


def cockpit_rss(sessions: int) -> dict[str, int]:
    """RSS of a fresh process running the cockpit with ``sessions`` sessions (see :func:`child`)."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__)), "--cockpit-child", str(sessions)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    result: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def child(sessions: int) -> None:
    """Run the cockpit on the sandbox world and print its memory as one JSON line."""
    from cockpit import busy_world

    from mpg_tui.tui.app import make_app

    before = proc_status_kib()
    with tempfile.TemporaryDirectory(prefix="mpg-bench-") as state_dir:
        world = await busy_world(sessions, Path(state_dir))
        app = make_app(world.gateway)
        async with app.run_test(headless=True, size=COCKPIT_SIZE) as pilot:
            await pilot.pause()
            after = proc_status_kib()
        await world.close()
    print(json.dumps({"imported": before["VmRSS"], **after}))


def growth_table(title: str, rows: Sequence[tuple[int, dict[str, int]]], notes: list[str]) -> Table:
    table = Table(title, ["sessions", "RSS MiB", "peak RSS MiB", "RSS per session KiB"], command_line(), notes=notes)
    base = rows[0][1]["VmRSS"]
    for size, status in rows:
        per = f"{(status['VmRSS'] - base) / size:.1f}" if size else ""
        table.add(size if size else "0 (idle)", fmt_mib(status["VmRSS"]), fmt_mib(status["VmHWM"]), per)
    return table


async def main_async(quick: bool, json_path: Path | None) -> None:
    sizes = [10, 100] if quick else [10, 100, 1000]
    with tempfile.TemporaryDirectory(prefix="mpg-bench-memory-") as tmp:
        headless = await headless_growth(Path(tmp), sizes)
    cockpit = [(size, cockpit_rss(size)) for size in [0, *sizes]]
    tables = [
        growth_table(
            "Memory: headless `mpg-tui start --no-ui` (10 projects, dashboard on)",
            headless,
            [
                "each session was opened by a message in a new thread and answered; sessions stay in memory "
                "(idle timeout 30 min); sessions.json keeps the newest 50 (maxPersistedSessions).",
                "RSS per session: growth over idle divided by the number of sessions.",
            ],
        ),
        growth_table(
            f"Memory: the cockpit (`make_app` on the fake core, headless run_test, {COCKPIT_SIZE[0]}x"
            f"{COCKPIT_SIZE[1]})",
            cockpit,
            [
                "a fresh process per row; the cockpit with imports alone (no app yet) is "
                f"{fmt_mib(cockpit[0][1]['imported'])} MiB.",
            ],
        ),
    ]
    emit(tables, json_path)


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--cockpit-child", type=int, metavar="N", help=argparse.SUPPRESS)
    args = ap.parse_args()
    quiet_logging()
    if args.cockpit_child is not None:
        asyncio.run(child(args.cockpit_child))
        return
    asyncio.run(main_async(args.quick, args.json))


if __name__ == "__main__":
    main()
