"""Where a message's time goes on the gateway's critical path, next to the bare bot's.

Runs ``mpg-tui start --no-ui`` and then ``bench/bare_bot.py`` as their own processes against
the same sandbox and stand-in as ``bench/latency.py --against-bare-bot`` (an existing
thread, one message answered before the next), each with ``bench/tracing/`` on its
``PYTHONPATH``: that ``sitecustomize`` marks each step with ``time.perf_counter`` in the
traced process itself (see its docstring). For every message the table gives each
step's offset, median over the messages:

* from discord.py receiving MESSAGE_CREATE to claude's ``fork_exec`` returning;
* from asyncio seeing claude exit to the reply's bytes being written to the socket.

Everything between the spawn and the exit runs while claude does, so the two spans are
what the gateway adds to a reply. The marks cost a few microseconds each, so the spans
come out somewhat longer than untraced. The steps are medians taken one by one, so they
need not add up. Use it to see which step a change moved; use ``bench/latency.py`` for
the latency itself.

    python bench/trace_path.py [--n N] [--json FILE]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

from common import Table, command_line, emit, fmt_ms, make_world, parser, quiet_logging
from latency import ONE_TURN, BareBotProcess, run_scenario

from mpg_tui.sandbox.discord import SandboxServer

TRACING = Path(__file__).resolve().with_name("tracing")
WARMUP_MARKED = 5
"""Messages left out at the start: the first spawns and imports are slower."""

GATEWAY_STEPS = (
    "mpg_tui.core.gateway:Gateway.handle_message=the gateway has the message,"
    "mpg_tui.core.journal:Journal.claim=claimed in the journal+,"
    "mpg_tui.core.intake:Intake._handle_routed=routed,"
    "mpg_tui.core.chain_runner:ChainRunner.start_turn=turn started,"
    "mpg_tui.core.sessions:SessionManager.submit=submitted to its session,"
    "mpg_tui.core.session_worker:SessionWorkers._drain=the session's worker runs,"
    "mpg_tui.core.turn_runner:TurnRunner._call_runner=the runner is called,"
    "mpg_tui.runners.direct:DirectRunner.run=the direct runner runs,"
    "mpg_tui.runners.parse:OutputParser.finish=claude's output parsed+,"
    "mpg_tui.core.turn_runner:TurnRunner._record=the turn recorded+,"
    "mpg_tui.core.delivery:Delivery.reply=the reply handed to delivery"
)
START_LABEL, SPAWNED_LABEL, EXITED_LABEL = "ws.recv", "popen:end", "exited"
REPLY_LABEL = "http.POST.messages"


def read_marks(path: Path) -> list[tuple[float, str]]:
    marks = []
    for line in path.read_text(encoding="utf-8").splitlines():
        at, _, label = line.partition(" ")
        marks.append((float(at), label))
    return marks


def message_spans(marks: Sequence[tuple[float, str]]) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Per message, each label's first offset (ms) from MESSAGE_CREATE to the spawn, and from the exit to the reply.

    A message's span starts at the last ``ws.recv`` before its ``popen`` that is not
    followed by another one before the first mark of ours: discord.py receives other
    events too (reactions, the bot's own messages).
    """
    starts: list[dict[str, float]] = []
    ends: list[dict[str, float]] = []
    labels = [label for _, label in marks]
    for i, label in enumerate(labels):
        if label == "popen":
            begin = i
            while begin > 0 and labels[begin] != START_LABEL:
                begin -= 1
            # Back over our own marks to the receipt that led to them.
            first_ours = next((j for j in range(begin, i) if labels[j] not in (START_LABEL, "sock.write")), i)
            begin = max((j for j in range(first_ours) if labels[j] == START_LABEL), default=begin)
            end = next((j for j in range(i, len(labels)) if labels[j] == SPAWNED_LABEL), None)
            if end is not None:
                starts.append(_offsets(marks, begin, end))
        elif label == EXITED_LABEL:
            post = next((j for j in range(i, len(labels)) if labels[j] == REPLY_LABEL), None)
            if post is None:
                continue
            written = next((j for j in range(post, len(labels)) if labels[j] == "sock.write"), None)
            if written is not None:
                ends.append(_offsets(marks, i, written))
    return starts[WARMUP_MARKED:], ends[WARMUP_MARKED:]


def _offsets(marks: Sequence[tuple[float, str]], begin: int, end: int) -> dict[str, float]:
    t0 = marks[begin][0]
    found: dict[str, float] = {}
    for at, label in marks[begin : end + 1]:
        if label.startswith("http.") and label != REPLY_LABEL:
            continue  # other requests (reactions, typing) in flight meanwhile
        found.setdefault(label, (at - t0) * 1000)
    found[marks[end][1]] = (marks[end][0] - t0) * 1000  # the span's own end, whatever came before
    return found


def medians(spans: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each label's median offset, for labels present in most spans, in the order they come."""
    labels = {label for span in spans for label in span}
    result = {}
    for label in labels:
        values = [span[label] for span in spans if label in span]
        if len(values) >= len(spans) * 0.9:
            result[label] = statistics.median(values)
    return dict(sorted(result.items(), key=lambda item: item[1]))


async def traced(process_class: type, root: Path, n: int, wrap: str) -> tuple[dict[str, float], dict[str, float]]:
    world = make_world(root, 1, timed=True, defaults=ONE_TURN)
    trace_file = root / "marks"
    async with SandboxServer(world.spec) as sandbox:
        if process_class is BareBotProcess:
            process = BareBotProcess(world, sandbox)
        else:
            from common import GatewayProcess

            process = GatewayProcess(world, sandbox)
        process.env.update(
            MPG_TRACE_FILE=str(trace_file),
            MPG_TRACE_WRAP=wrap,
            PYTHONPATH=os.pathsep.join(filter(None, [str(TRACING), process.env.get("PYTHONPATH")])),
        )
        async with process:
            await run_scenario("traced", sandbox, world, "existing", n + WARMUP_MARKED)
            pid = process.pid
    starts, ends = message_spans(read_marks(trace_file.with_name(f"marks.{pid}")))
    if len(starts) < n // 2 or len(ends) < n // 2:
        raise RuntimeError(f"only {len(starts)} spawns and {len(ends)} replies traced of {n} messages")
    return medians(starts), medians(ends)


NAMES = {
    "ws.recv": "discord.py receives MESSAGE_CREATE",
    "popen": "fork_exec starts",
    "popen:end": "fork_exec returns: claude is running",
    "exited": "asyncio sees claude exit",
    REPLY_LABEL: "discord.py starts the reply's POST",
    "sock.write": "the reply is written to the socket",
}


def span_table(title: str, gateway: dict[str, float], bare: dict[str, float], n: int) -> Table:
    table = Table(
        title,
        ["step", "gateway", "bare bot"],
        command_line(),
        notes=[f"median offset (ms) over {n} messages in an existing thread; '' = not a step of that bot"],
    )
    for label, at in gateway.items():
        if label == "sock.write" and label not in bare:
            continue
        name = NAMES.get(label, label.replace(":end", " (returns)"))
        table.add(name, fmt_ms(at), fmt_ms(bare[label]) if label in bare else "")
    return table


async def main_async(n: int, json_path: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="mpg-bench-trace-") as tmp:
        from common import GatewayProcess

        gateway_start, gateway_end = await traced(GatewayProcess, Path(tmp) / "gateway", n, GATEWAY_STEPS)
        bare_start, bare_end = await traced(BareBotProcess, Path(tmp) / "bare", n, "")
    emit(
        [
            span_table("From MESSAGE_CREATE to claude's spawn", gateway_start, bare_start, n),
            span_table("From claude's exit to the reply", gateway_end, bare_end, n),
        ],
        json_path,
    )


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, help="messages (default 100, 20 with --quick)")
    args = ap.parse_args()
    quiet_logging()
    asyncio.run(main_async(args.n or (20 if args.quick else 100), args.json))


if __name__ == "__main__":
    main()
