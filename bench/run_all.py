"""Run every benchmark, one process each, and print every table (``make bench``).

Each script runs as its own process (clean memory figures, no state shared through
discord.py's process-wide endpoints), with its output passed straight through. With
``--markdown FILE`` the tables are also written as Markdown, headed by the machine and
the commit they were measured on: the raw material of ``docs/benchmarks.md``.

    .venv/bin/python bench/run_all.py [--quick] [--only NAME ...] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, Table, command_line, console, machine, print_table

BENCH = Path(__file__).resolve().parent
SCRIPTS = ("latency", "trace_path", "live", "throughput", "startup", "memory", "cockpit", "control", "store", "scale")


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except OSError:
        return "unknown"
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True, timeout=10
    )
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def run(name: str, quick: bool, json_path: Path) -> tuple[int, float]:
    """Run one benchmark script; returns its exit status and wall time."""
    argv = [sys.executable, str(BENCH / f"{name}.py"), "--json", str(json_path)]
    if quick:
        argv.insert(2, "--quick")
    started = time.perf_counter()
    status = subprocess.run(argv, cwd=REPO, check=False).returncode
    return status, time.perf_counter() - started


def markdown(header: list[str], sections: list[tuple[str, list[Table]]]) -> str:
    parts = ["\n".join(header) + "\n"]
    for name, tables in sections:
        parts.append(f"### {name}\n")
        parts += [table.markdown() for table in tables]
    return "\n".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run of every benchmark (about a minute)")
    ap.add_argument("--only", nargs="+", choices=SCRIPTS, metavar="NAME", help=f"run only these: {', '.join(SCRIPTS)}")
    ap.add_argument("--markdown", type=Path, metavar="FILE", help="also write every table to FILE as Markdown")
    args = ap.parse_args()
    out = console()
    header = [
        f"- Machine: {machine()}",
        f"- Load average before the run: {load_average()}",
        f"- Commit: {commit()}",
        f"- Date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Command: `{command_line()}`",
    ]
    for line in header:
        out.print(line.removeprefix("- "))
    out.print()
    sections: list[tuple[str, list[Table]]] = []
    timings: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory(prefix="mpg-bench-") as tmp:
        for name in args.only or SCRIPTS:
            out.rule(f"bench/{name}.py")
            json_path = Path(tmp) / f"{name}.json"
            status, seconds = run(name, args.quick, json_path)
            timings.append((name, status, seconds))
            if status == 0 and json_path.exists():
                data = json.loads(json_path.read_text(encoding="utf-8"))
                sections.append((name, [Table(**table) for table in data]))
    summary = Table("Benchmark scripts", ["script", "exit status", "wall s"], command_line())
    for name, status, seconds in timings:
        summary.add(f"bench/{name}.py", status, f"{seconds:.1f}")
    summary.add("total", "", f"{sum(s for _, _, s in timings):.1f}")
    header.append(f"- Load average after the run: {load_average()}")
    out.rule()
    out.print(header[-1].removeprefix("- "))
    print_table(summary, out)
    if args.markdown is not None:
        args.markdown.write_text(markdown(header, [*sections, ("summary", [summary])]), encoding="utf-8")
    return 0 if all(status == 0 for _, status, _ in timings) else 1


if __name__ == "__main__":
    sys.exit(main())
