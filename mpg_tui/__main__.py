"""Command line: ``mpg-tui [start] [--no-ui]``, ``init``, ``status``, ``logs``, ``doctor``, ``demo``."""

from __future__ import annotations

import argparse
import sys

from mpg_tui import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mpg-tui", description="Run Claude Code on many projects from Discord.")
    parser.add_argument("--version", action="version", version=f"mpg-tui {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
