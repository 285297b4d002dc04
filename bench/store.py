"""The session store: saving and loading ``sessions.json`` with many entries.

Uses :class:`~mpg_tui.core.store.SessionStore` as the gateway does, with
``maxPersistedSessions`` raised so nothing is pruned. Times:

* load: a fresh store reading the file (parse and validate every entry);
* save, one entry changed: the gateway's case after every run start and finish (the
  file is still the one this store wrote, so it is not re-read: render, write, fsync);
* save after another writer: the file changed on disk, so it is read and merged first;
* the parts: rendering the document, parsing it, and the atomic write (two fsyncs).

    .venv/bin/python bench/store.py [--quick]
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from common import STATS_COLUMNS, Stats, Table, command_line, emit, parser, quiet_logging

from mpg_tui.core.clock import SystemClock
from mpg_tui.core.sessions_file import StoredSession, parse_document, render_document
from mpg_tui.core.store import SessionStore
from mpg_tui.fsutil import atomic_write


def entry(i: int, now_ms: int) -> StoredSession:
    thread = f"14{i:017d}"
    return StoredSession(
        key=f"{thread}:engineer" if i % 2 else thread,
        session_id=f"{i:08x}-1c2d-4e5f-8a9b-{i:012x}",
        cwd=f"/srv/projects/project-{i % 10:02d}/.worktrees/{thread}",
        last_activity_ms=now_ms - i * 1000,
        channel_id=f"15{i % 10:017d}",
        thread_id=thread,
        agent="engineer" if i % 2 else None,
        worktree_path=f"/srv/projects/project-{i % 10:02d}/.worktrees/{thread}",
        project_dir=f"/srv/projects/project-{i % 10:02d}",
        cost_usd=0.0123 * (i % 7),
        input_tokens=1200 + i,
        output_tokens=300 + i,
        runs=1 + i % 5,
    )


def store_at(path: Path, size: int) -> SessionStore:
    return SessionStore(path, clock=SystemClock(), max_entries=max(size, 1))


def timed(action: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


async def timed_async(action: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - started)
    return samples


@dataclass
class Figures:
    entries: int
    file_bytes: int
    samples: dict[str, list[float]]
    """Seconds per run, by operation."""


LOAD = "load (parse and validate)"
SAVE = "save, one entry changed"
SAVE_MERGE = "save after another writer (read + merge)"
RENDER = "part: render the document"
PARSE = "part: parse the document"
WRITE = "part: atomic write (fsync file + directory)"


async def measure(directory: Path, size: int, runs: int) -> Figures:
    """Every figure for a store of ``size`` entries."""
    now_ms = int(time.time() * 1000)
    entries = [entry(i, now_ms) for i in range(size)]
    path = directory / f"sessions-{size}.json"
    store = store_at(path, size)
    for item in entries:
        store.put(item)
    await store.flush()
    text = path.read_text(encoding="utf-8")

    counter = iter(range(10**9))

    async def save_one_changed() -> None:
        store.put(dataclasses.replace(entries[0], runs=next(counter)))
        await store.flush()

    async def save_after_other_writer() -> None:
        # Another writer's rename shows as a new signature (inode, size, mtime): touching the file does too.
        os.utime(path, ns=(time.time_ns(), time.time_ns()))
        store.put(dataclasses.replace(entries[0], runs=next(counter)))
        await store.flush()

    samples = {
        LOAD: timed(lambda: store_at(path, size).load(), runs),
        SAVE: await timed_async(save_one_changed, runs),
        SAVE_MERGE: await timed_async(save_after_other_writer, runs),
        RENDER: timed(lambda: render_document(store.entries()), runs),
        PARSE: timed(lambda: parse_document(text), runs),
        WRITE: timed(lambda: atomic_write(directory / "scratch.json", text), runs),
    }
    await store.close()
    return Figures(size, path.stat().st_size, samples)


def store_table(figures: Figures, runs: int) -> Table:
    table = Table(
        f"Store: sessions.json with {figures.entries:,} entries ({figures.file_bytes / 1024:.0f} KiB)",
        ["operation", *STATS_COLUMNS],
        command_line(),
        notes=[f"{runs} runs each, one after another, on the disk under the system temp directory."],
    )
    for label, samples in figures.samples.items():
        table.add(label, *Stats.ms(samples).cells())
    return table


def scale_table(rows: Sequence[Figures]) -> Table:
    table = Table(
        "Store: how save and load grow with the number of entries (p50 ms)",
        ["entries", "KiB", "load", "save, one changed", "save after other writer", "render", "parse"],
        command_line(),
    )
    for figures in rows:
        p50s = (f"{Stats.ms(figures.samples[k]).p50:.2f}" for k in (LOAD, SAVE, SAVE_MERGE, RENDER, PARSE))
        table.add(f"{figures.entries:,}", f"{figures.file_bytes / 1024:.0f}", *p50s)
    return table


async def main_async(quick: bool, json_path: Path | None) -> None:
    runs = 5 if quick else 20
    with tempfile.TemporaryDirectory(prefix="mpg-bench-store-") as tmp:
        rows = [await measure(Path(tmp), size, runs) for size in (10, 100, 1000, 10_000)]
    emit([store_table(rows[-1], runs), scale_table(rows)], json_path)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    quiet_logging()
    asyncio.run(main_async(args.quick, args.json))


if __name__ == "__main__":
    main()
