"""Warm claude processes: Discord message to reply with the real Claude Code CLI and an instant model.

The gateway runs in this process against the sandbox Discord server; ``claude`` is the
pinned real CLI (``scripts/ensure-claude-cli``) pointed at the loopback Messages API of
the contract tests, which answers at once. So the reply time is the overhead: the
gateway, the CLI's start (cold) or a pipe write (warm), and the CLI's own work per turn.

Scenarios, one message at a time: a message that opens a new thread (a new claude
process either way), a follow-up in a thread of a ``"warm": false`` project (one process
per turn, ``--resume``), a follow-up in a thread of a warm project (the process of the
thread's first turn). Reported with the CPU time per turn (reaped children for cold
turns, the warm process's own counters for warm ones) and the RSS of the warm processes.

    .venv/bin/python bench/live.py [--quick] [--n N]
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path

from common import (
    STATS_COLUMNS,
    Stats,
    Table,
    command_line,
    cpu_seconds,
    emit,
    fmt_mib,
    fmt_ms,
    in_process_gateway,
    make_world,
    parser,
    proc_status_kib,
    quiet_logging,
    send_traced,
)

from tests.contract.conftest import CLI_BIN, installed_version, pinned_version
from tests.contract.messages_api import MessagesAPI, RecordedRequest, Text

GOAL_RATIO = 10.0
_TAG = re.compile(r"\[\[reply:([^\]]+)\]\]")


def echo_tag(request: RecordedRequest) -> Text:
    """Answer ``[[reply:TAG]]`` with TAG, which is what ``send_traced`` waits for."""
    found = _TAG.search(request.prompt)
    return Text(found.group(1) if found else "ok")


async def main_async(n: int, json_path: Path | None) -> None:
    if installed_version() != pinned_version():
        raise SystemExit(f"bench/live.py needs the pinned claude CLI {pinned_version()}: run scripts/ensure-claude-cli")
    with tempfile.TemporaryDirectory(prefix="mpg-bench-live-") as tmp:
        root = Path(tmp)
        world = make_world(root / "world", 2)
        warm_channel, cold_channel = world.channel_ids
        world.projects[cold_channel]["warm"] = False
        home = root / "home"
        home.mkdir()
        async with MessagesAPI(fallback=echo_tag) as api:
            env = {
                "ANTHROPIC_BASE_URL": api.base_url,
                "ANTHROPIC_API_KEY": "bench",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1",
                "CLAUDE_CODE_MAX_RETRIES": "0",
                "HOME": str(home),
                "CLAUDE_CONFIG_DIR": str(home / ".claude"),
            }
            async with in_process_gateway(world, claude_command=[str(CLI_BIN)], claude_env=env) as gateway:
                sandbox, user = gateway.sandbox, world.user_id
                live = gateway.runtime._direct  # the LiveRunner: which warm process serves which thread

                new_thread = [(await send_traced(sandbox, warm_channel, user, f"new-{i}")).total for i in range(n + 1)][
                    1:
                ]

                opener = await send_traced(sandbox, cold_channel, user, "cold-open")
                children_before = cpu_seconds()[1]
                cold = [(await send_traced(sandbox, opener.thread_id, user, f"cold-{i}")).total for i in range(n)]
                cold_cpu = (cpu_seconds()[1] - children_before) / n

                opener = await send_traced(sandbox, warm_channel, user, "warm-open")
                await send_traced(sandbox, opener.thread_id, user, "warm-first")  # warm-up
                pid = live.warm[opener.thread_id]
                own_before = cpu_seconds(pid)[0]
                warm = [(await send_traced(sandbox, opener.thread_id, user, f"warm-{i}")).total for i in range(n)]
                warm_cpu = (cpu_seconds(pid)[0] - own_before) / n
                assert live.warm[opener.thread_id] == pid, "the follow-ups changed process"
                rss = [proc_status_kib(p).get("VmRSS", 0) for p in live.warm.values()]
                warm_rss = proc_status_kib(pid).get("VmRSS", 0)

    cold_stats, warm_stats, new_stats = Stats.ms(cold), Stats.ms(warm), Stats.ms(new_thread)
    ratio = cold_stats.p50 / warm_stats.p50
    table = Table(
        "Discord message → reply with the real claude CLI and an instant model (ms)",
        ["scenario", *STATS_COLUMNS, "CPU/turn ms"],
        command_line(),
        notes=[
            f"goal: warm follow-up at least {GOAL_RATIO:g}x faster than a cold one; here {ratio:.1f}x "
            f"({'met' if ratio >= GOAL_RATIO else 'missed'}).",
            f"RSS of the warm process serving the follow-ups: {fmt_mib(warm_rss)} MiB; "
            f"{len(rss)} warm processes held {fmt_mib(sum(rss))} MiB in all.",
            "CPU/turn: reaped children's user+system time for cold follow-ups; the warm process's own for warm ones.",
            "the new-thread row opens a thread per message (a claude start each, plus the thread's creation).",
        ],
    )
    table.add("new thread (cold)", *new_stats.cells(), "")
    table.add("follow-up, warm: false (cold)", *cold_stats.cells(), fmt_ms(cold_cpu * 1000))
    table.add("follow-up, warm", *warm_stats.cells(), fmt_ms(warm_cpu * 1000))
    emit([table], json_path)


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, help="messages per scenario (default 20, 5 with --quick)")
    args = ap.parse_args()
    quiet_logging()
    asyncio.run(main_async(args.n or (5 if args.quick else 20), args.json))


if __name__ == "__main__":
    main()
