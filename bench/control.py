"""The control API: event delivery over the socket, and the cockpit attached through it.

A child process plays the gateway: the cockpit benchmark's sandbox world (the real gateway
on an in-memory chat and a scripted runner) with 1,000 sessions, its
:class:`ControlService` on a Unix socket, and the same traffic (a message starts a run, it
reports progress twice, then answers, session after session) at a fixed rate of steps. Among the load
it publishes probe events stamped with the wall clock at publish time.

* delivery: a :class:`RemoteCore` in this process follows the stream; a probe's delay is
  the time from its publication in the child to its republication on the remote bus;
* keypress: the real cockpit over that RemoteCore (``App.run_test``) while the load pours
  in; Down/Up presses are timed as in ``bench/cockpit.py`` (handled, then on screen).

    .venv/bin/python bench/control.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from cockpit import (
    PRESS_TIMEOUT_S,
    SIZE,
    STEP_RATE,
    KeyLatency,
    PressTimer,
    busy_world,
    drive_traffic,
    key_table,
)
from common import STATS_COLUMNS, Stats, Table, command_line, emit, parser, quiet_logging

from mpg_tui.control.client import Endpoint
from mpg_tui.control.journal import EventJournal
from mpg_tui.control.remote import RemoteCore
from mpg_tui.control.server import ControlService, socket_path
from mpg_tui.core.events import Event, LogLine
from mpg_tui.tui.app import make_app

SESSIONS = 1000
PROBE_LOGGER = "bench.probe"
PROBES_PER_S = 20.0


# -- the gateway side (child process) --------------------------------------------------------


async def serve(run_dir: Path, rate: float, sessions: int) -> None:
    world = await busy_world(sessions, run_dir / "state")
    core = world.gateway
    infos = core.sessions()
    service = ControlService(core, EventJournal(core), socket_file=socket_path(run_dir))
    await service.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), stop.set)  # the parent closes our stdin to stop us
    sys.stdout.write("ready\n")
    sys.stdout.flush()

    async def probes() -> None:
        n = 0
        while not stop.is_set():
            await asyncio.sleep(1 / PROBES_PER_S)
            n += 1
            core.bus.publish(LogLine(level="debug", logger=PROBE_LOGGER, message=str(n), at=time.time()))

    probing = asyncio.create_task(probes())
    load = asyncio.create_task(drive_traffic(world, infos, rate, stop)) if rate else None
    await stop.wait()
    probing.cancel()
    if load is not None:
        await load
    await service.stop()
    await world.close()


@contextlib.asynccontextmanager
async def gateway(rate: float, sessions: int = SESSIONS) -> AsyncIterator[Endpoint]:
    with tempfile.TemporaryDirectory(prefix="mpg-bench-") as tmp:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve",
            tmp,
            "--rate",
            str(rate),
            "--sessions",
            str(sessions),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert child.stdout is not None and child.stdin is not None
        try:
            line = await asyncio.wait_for(child.stdout.readline(), 60)
            if line.strip() != b"ready":
                raise RuntimeError("the benchmark gateway did not start")
            yield Endpoint(url=f"unix:{socket_path(Path(tmp))}")
        finally:
            child.stdin.close()
            try:
                await asyncio.wait_for(child.wait(), 10)
            except TimeoutError:
                child.kill()
                await child.wait()


# -- measurements ----------------------------------------------------------------------------


def probe_delays(remote: RemoteCore, into: list[float]) -> None:
    def heard(event: Event) -> None:
        if isinstance(event, LogLine) and event.logger == PROBE_LOGGER:
            into.append(time.time() - event.at)

    remote.bus.listen(heard)


async def delivery(rate: float, seconds: float) -> tuple[list[float], int]:
    """Probe delays over ``seconds`` under ``rate`` events/s, and how many events arrived."""
    async with gateway(rate) as endpoint:
        remote = await RemoteCore.attach(endpoint)
        delays: list[float] = []
        counted = [0]
        remote.bus.listen(lambda _e: counted.__setitem__(0, counted[0] + 1))
        probe_delays(remote, delays)
        follow = asyncio.create_task(remote.run())
        await remote.wait_linked()
        await asyncio.sleep(seconds)
        follow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follow
    return delays, counted[0]


async def attached_key_latency(rate: float, presses: int, seed: int = 7) -> tuple[KeyLatency, list[float]]:
    async with gateway(rate) as endpoint:
        remote = await RemoteCore.attach(endpoint)
        delays: list[float] = []
        probe_delays(remote, delays)
        received = [0]
        remote.bus.listen(lambda _e: received.__setitem__(0, received[0] + 1))
        app = make_app(remote, run_core=remote.run, attached_to="bench")
        rng = random.Random(seed)
        async with app.run_test(headless=True, size=SIZE) as pilot:
            await remote.wait_linked()
            await pilot.pause()
            timer = PressTimer(app)
            batches0 = app.batches_applied
            events0 = received[0]
            # Probes published while the cockpit started (its core is followed once the panes
            # are up) arrive all at once then: they measure the start, not the presses.
            delays.clear()
            started = time.perf_counter()
            done = await timer.series(presses, PRESS_TIMEOUT_S, rng)
            seconds = time.perf_counter() - started
            batches = app.batches_applied - batches0
            events = received[0] - events0
            await pilot.press("q")
    return KeyLatency(SESSIONS, rate, done.handled, done.drawn, done.lost, done.slow, events, batches, seconds), delays


def delivery_table(rows: list[tuple[str, list[float], str]]) -> Table:
    table = Table(
        "Control API: event delivery over the Unix socket (publish in the gateway to the cockpit's bus)",
        ["load", *STATS_COLUMNS, "events received"],
        command_line(),
        notes=[
            "The gateway is a child process: the sandbox world's gateway (1,000 sessions) behind the real "
            "ControlService; "
            "this process follows it with a RemoteCore. Probe events are stamped with the wall clock when "
            f"published ({PROBES_PER_S:.0f}/s among the load); the delay ends when the RemoteCore republishes them.",
            "Each event crosses as one JSON line carrying the session, chain and totals it touched.",
        ],
    )
    for label, delays, received in rows:
        table.add(label, *Stats.ms(delays).cells(), received)
    return table


async def main_async(quick: bool, json_path: Path | None) -> None:
    seconds = 3.0 if quick else 15.0
    presses = 20 if quick else 100
    rows = []
    for rate in (STEP_RATE, 0.0):
        delays, received = await delivery(rate, seconds)
        label = f"{rate:.0f} steps/s" if rate else "probes only"
        rows.append((label, delays, str(received)))
    busy, under_keys = await attached_key_latency(STEP_RATE, presses)
    rows.append((f"{STEP_RATE:.0f} steps/s, cockpit attached and pressed", under_keys, "-"))
    idle, _ = await attached_key_latency(0.0, presses)
    keys = key_table(
        "Cockpit attached over the control socket: keypress to screen (Down/Up in the sessions table)",
        [
            (f"{SESSIONS} sessions, {STEP_RATE:.0f} steps/s", busy),
            (f"{SESSIONS} sessions, idle", idle),
        ],
        [
            "As bench/cockpit.py, but the cockpit runs over a RemoteCore following a gateway in another process "
            "through its control socket; 'load applied' counts the probes the cockpit received too.",
        ],
    )
    emit([delivery_table(rows), keys], json_path)


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, default=STEP_RATE, help=argparse.SUPPRESS)
    ap.add_argument("--sessions", type=int, default=SESSIONS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    quiet_logging()
    if args.serve is not None:
        asyncio.run(serve(args.serve, args.rate, args.sessions))
        return
    asyncio.run(main_async(args.quick, args.json))


if __name__ == "__main__":
    main()
