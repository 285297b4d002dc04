"""Throughput: a burst of messages over many threads and projects, and that each is answered once.

1,000 messages over 100 threads in 10 projects (10 per thread), against ``mpg-tui start
--no-ui`` with ``maxConcurrentSessions`` 4 and 16. Each thread is opened by one message in
its project's channel; its other nine are posted the moment the thread's first turn is
queued (the bot's typing call in the new thread says so), so they queue behind it. Every
message asks the stand-in for a unique reply; the replies are counted per message (none
lost, none twice) and checked for order within each thread (sessions are FIFO).

    .venv/bin/python bench/throughput.py [--quick]
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from common import (
    STATS_COLUMNS,
    GatewayProcess,
    Stats,
    Table,
    World,
    command_line,
    cpu_seconds,
    emit,
    fmt_ms,
    make_world,
    parser,
    quiet_logging,
)

from mpg_tui.sandbox.discord import SandboxServer

IDLE_TIMEOUT_S = 30.0
"""A burst ends when every message got a reply or an error, or when the bot did nothing for this long."""


@dataclass
class Burst:
    concurrency: int
    messages: int
    threads: int
    projects: int
    elapsed: float
    latencies: list[float]
    answered: int
    lost: int
    duplicated: int
    out_of_order: int
    errors: int
    queued_notices: int
    gateway_cpu: float
    agent_cpu: float
    bench_cpu: float

    @property
    def rate(self) -> float:
        """Answered messages per second."""
        return self.answered / self.elapsed if self.elapsed > 0 else 0.0


async def burst(world: World, concurrency: int, threads: int, per_thread: int) -> Burst:
    """Run one burst against a fresh gateway process; returns what it counted."""
    channels = world.channel_ids
    user = world.user_id
    posted: dict[str, float] = {}
    order: dict[str, list[str]] = {}  # thread -> tags in posting order
    replies: Counter[str] = Counter()
    replied_at: dict[str, float] = {}
    reply_order: dict[str, list[str]] = {}
    errors = notices = 0
    async with (
        SandboxServer(world.spec) as sandbox,
        GatewayProcess(world, sandbox, f"gateway-{concurrency}", maxConcurrentSessions=concurrency) as gateway,
    ):
        after = sandbox.last_seq
        gateway_cpu0, agent_cpu0 = cpu_seconds(gateway.pid)
        bench_cpu0 = cpu_seconds()[0]
        started = time.time()
        openers: dict[str, int] = {}  # opener message id -> thread number
        for t in range(threads):
            tag = f"t{t}-m0"
            posted[tag] = time.time()
            message = await sandbox.post_as_user(channels[t % len(channels)], user, f"[[reply:{tag}]]")
            openers[str(message["id"])] = t
        thread_of: dict[str, int] = {}  # thread channel id -> thread number
        released: set[str] = set()
        expected = threads * per_thread
        seen = after
        while len(replied_at) + errors < expected:
            try:
                action = await sandbox.wait_for(lambda _a: True, timeout=IDLE_TIMEOUT_S, after=seen)
            except TimeoutError:
                break  # stuck: what was not answered counts as lost
            seen = action.seq
            if action.kind == "thread_created" and action.message_id in openers:
                thread_id = str(action.payload["id"])
                thread_of[thread_id] = openers[action.message_id]
                order[thread_id] = [f"t{openers[action.message_id]}-m0"]
            elif action.kind == "typing" and action.channel_id in thread_of and action.channel_id not in released:
                # The opener's turn is queued: the rest of the thread's messages go behind it.
                released.add(action.channel_id)
                t = thread_of[action.channel_id]
                for m in range(1, per_thread):
                    tag = f"t{t}-m{m}"
                    posted[tag] = time.time()
                    order[action.channel_id].append(tag)
                    await sandbox.post_as_user(action.channel_id, user, f"[[reply:{tag}]]")
            elif action.kind == "message_sent":
                text = action.text
                if text in posted:
                    replies[text] += 1
                    replied_at.setdefault(text, action.at)
                    reply_order.setdefault(action.channel_id, []).append(text)
                elif text.startswith("**Error**"):
                    errors += 1
                else:
                    notices += 1
        finished = max(replied_at.values(), default=time.time())
        gateway_cpu1, agent_cpu1 = cpu_seconds(gateway.pid)
        bench_cpu1 = cpu_seconds()[0]
    # Anything answered late (a duplicate) was posted before the gateway stopped.
    for action in sandbox.action_log.snapshot(seen):
        if action.kind == "message_sent" and action.text in posted:
            replies[action.text] += 1
    out_of_order = 0
    for thread_id, tags in order.items():
        rank = {tag: i for i, tag in enumerate(tags)}
        got = [rank[tag] for tag in reply_order.get(thread_id, []) if tag in rank]
        out_of_order += sum(1 for before, now in itertools.pairwise(got) if now < before)
    return Burst(
        concurrency=concurrency,
        messages=len(posted),
        threads=threads,
        projects=len(channels),
        elapsed=finished - started,
        latencies=[replied_at[tag] - posted[tag] for tag in replied_at],
        answered=len(replied_at),
        lost=len(posted) - len(replied_at),
        duplicated=sum(count - 1 for count in replies.values() if count > 1),
        out_of_order=out_of_order,
        errors=errors,
        queued_notices=notices,
        gateway_cpu=gateway_cpu1 - gateway_cpu0,
        agent_cpu=agent_cpu1 - agent_cpu0,
        bench_cpu=bench_cpu1 - bench_cpu0,
    )


async def main_async(quick: bool, json_path: Path | None) -> None:
    threads, per_thread, projects = (10, 10, 10) if quick else (100, 10, 10)
    results: list[Burst] = []
    with tempfile.TemporaryDirectory(prefix="mpg-bench-throughput-") as tmp:
        for concurrency in (4, 16):
            world = make_world(Path(tmp) / f"c{concurrency}", projects)
            results.append(await burst(world, concurrency, threads, per_thread))
    command = command_line()
    rate = Table(
        f"Throughput: {threads * per_thread} messages, {threads} threads, {projects} projects, "
        "gateway as `mpg-tui start --no-ui`",
        ["maxConcurrentSessions", "msgs/s", "elapsed s", "answered", "lost", "twice", "out of order", "errors"],
        command,
        notes=[
            "elapsed: first message posted to last reply received; answered/lost/twice count replies per message "
            "(each asked for a unique text); out of order: replies in a thread that came before one posted "
            "earlier; errors: `**Error**` posts of the gateway.",
        ],
    )
    for r in results:
        rate.add(
            r.concurrency,
            f"{r.rate:.1f}",
            f"{r.elapsed:.1f}",
            r.answered,
            r.lost,
            r.duplicated,
            r.out_of_order,
            r.errors,
        )
    cost = Table(
        "Throughput: where the CPU went (per message)",
        ["maxConcurrentSessions", "gateway ms", "stand-in claude ms", "sandbox+bench ms", "CPU-bound ceiling msgs/s"],
        command,
        notes=[
            "CPU time from /proc (user+system); stand-in = the gateway's reaped children. The ceiling is what "
            "2 cores allow at that CPU per message: 2 / (sum of the three).",
        ],
    )
    for r in results:
        per = [r.gateway_cpu / r.messages, r.agent_cpu / r.messages, r.bench_cpu / r.messages]
        ceiling = 2 / sum(per) if sum(per) else float("nan")
        cost.add(r.concurrency, *(fmt_ms(v * 1000) for v in per), f"{ceiling:.1f}")
    latency = Table(
        "Throughput: time from posting to reply under the burst (includes queueing)",
        ["maxConcurrentSessions", *STATS_COLUMNS, "queue notices"],
        command,
    )
    for r in results:
        latency.add(r.concurrency, *Stats.ms(r.latencies).cells(), r.queued_notices)
    emit([rate, cost, latency], json_path)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    quiet_logging()
    asyncio.run(main_async(args.quick, args.json))


if __name__ == "__main__":
    main()
