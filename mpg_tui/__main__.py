"""Command line: ``mpg-tui [start]``, ``cockpit``, ``demo``, ``init``, ``status``, ``logs``, ``doctor``,
``stop``, ``daemon``, ``resume``.

Importing this module stays cheap and headless: each command's module (and the gateway,
with Textual and discord.py behind it) is imported only when that command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import TYPE_CHECKING

from mpg_tui import __version__

if TYPE_CHECKING:
    from mpg_tui.cli.common import Io

COMMANDS = ("start", "cockpit", "demo", "init", "status", "logs", "doctor", "stop", "daemon", "resume", "help")
DEFAULT_LEASE_S = 30.0  # mpg_tui.core.holds.DEFAULT_LEASE_S, not imported: this module stays cheap
_TOP_LEVEL_FLAGS = ("-h", "--help", "--version")
PROFILE_HELP = "use $MPG_HOME/profiles/NAME/config.json"
CONFIG_HELP = "use this config.json (wins over --profile)"
MIGRATE_HELP = "copy .env, config.json and sessions from here into $MPG_HOME (profile 'default')"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mpg-tui",
        description="Route Discord channels to Claude Code sessions, with a terminal cockpit.",
        epilog="With no command, `start` runs. Environment: MPG_HOME (config home, default ~/.mpg), "
        "DISCORD_BOT_TOKEN, MPG_TUI_LOG_DIR and MPG_TUI_STATE_DIR.",
    )
    parser.add_argument("--version", action="version", version=f"mpg-tui {__version__}")
    # Shown here because they are what `mpg-tui` alone is run with; the arguments are
    # parsed by `start` (or, for --migrate, `init`): see _with_default_command.
    everyday = parser.add_argument_group("options of start, the default command")
    everyday.add_argument("--no-ui", action="store_true", default=argparse.SUPPRESS, help="run headless")
    everyday.add_argument("--profile", metavar="NAME", default=argparse.SUPPRESS, help=PROFILE_HELP)
    everyday.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=CONFIG_HELP)
    everyday.add_argument(
        "--no-dashboard", action="store_true", default=argparse.SUPPRESS, help="without the web dashboard"
    )
    moving = parser.add_argument_group("moving from MPG")
    moving.add_argument(
        "--migrate",
        action="store_true",
        default=argparse.SUPPRESS,
        help="the same as `init --migrate`: " + MIGRATE_HELP,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--profile", metavar="NAME", help=PROFILE_HELP)
    where.add_argument("--config", metavar="PATH", help=CONFIG_HELP)

    start = sub.add_parser("start", parents=[where], help="start the gateway (the default command)")
    start.add_argument("--no-ui", action="store_true", help="run headless: log lines instead of the cockpit")
    start.add_argument(
        "--dashboard",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serve the web dashboard (default: on unless httpPort is false)",
    )

    cockpit = sub.add_parser(
        "cockpit", parents=[where], help="the cockpit alone, attached to running gateways (local or remote)"
    )
    cockpit.add_argument(
        "--connect",
        action="append",
        metavar="[NAME=]URL",
        help="a gateway's dashboard URL (http://host:port) or unix:/path/control.sock; repeatable",
    )
    cockpit.add_argument(
        "--token-file", metavar="PATH", help="file holding the dashboard token (else $MPG_DASHBOARD_TOKEN)"
    )
    cockpit.add_argument(
        "--cockpit-config", metavar="PATH", help="cockpit config with a 'remotes' list ($MPG_HOME/cockpit.json)"
    )

    demo = sub.add_parser("demo", help="run everything against a local sandbox: no token, no Claude account")
    demo.add_argument("--no-ui", action="store_true", help="run headless")
    demo.add_argument("--real-claude", action="store_true", help="run the real claude CLI instead of the stand-in")

    init = sub.add_parser("init", help="interactive set-up wizard (writes config.json and .env)")
    init.add_argument("--profile", metavar="NAME", help="write to $MPG_HOME/profiles/NAME/ instead of here")
    init.add_argument("--migrate", action="store_true", help=MIGRATE_HELP)

    sub.add_parser("status", parents=[where], help="show sessions from disk and whether the gateway runs")

    logs = sub.add_parser("logs", parents=[where], help="show the structured gateway log")
    logs.add_argument("--level", choices=("debug", "info", "warn", "error"), help="minimum level to show")
    logs.add_argument("--project", metavar="P", help="only entries of this project (name or channel ID)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new entries")
    logs.add_argument("-n", "--lines", type=_non_negative, default=50, metavar="N", help="last N entries (50)")

    sub.add_parser("doctor", parents=[where], help="check the tools, token, config and directories")

    stop = sub.add_parser("stop", parents=[where], help="stop the running gateway of this profile")
    stop.add_argument("--timeout", type=float, default=15.0, metavar="S", help="seconds to wait (15)")

    daemon = sub.add_parser("daemon", help="run the gateway as a systemd user service")
    daemon.add_argument("action", choices=("install", "uninstall", "status", "logs"))
    daemon.add_argument("--profile", metavar="NAME", default="default", help="the profile to serve (default)")
    daemon.add_argument("--print", action="store_true", help="install: show the unit instead of installing it")
    daemon.add_argument("-f", "--follow", action="store_true", help="logs: keep printing new lines")

    resume = sub.add_parser(
        "resume",
        parents=[where],
        help="take a session over in this terminal (claude --resume), then hand it back to the gateway",
    )
    resume.add_argument("session", metavar="SESSION", help="a session key, a thread ID or an unambiguous prefix")
    when = resume.add_mutually_exclusive_group()
    when.add_argument("--wait", action="store_true", help="if a run is in progress, wait for it to end")
    when.add_argument("--stop", action="store_true", help="if a run is in progress, stop it")
    resume.add_argument("--claude", metavar="PATH", help="the claude to run (default: the gateway's, else claude)")
    resume.add_argument(
        "--lease",
        type=float,
        default=DEFAULT_LEASE_S,
        metavar="S",
        help=f"seconds the gateway waits once this process stops answering ({DEFAULT_LEASE_S:g})",
    )

    sub.add_parser("help", help="show this help")
    return parser


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _with_default_command(argv: list[str]) -> list[str]:
    """``mpg-tui`` and ``mpg-tui --no-ui --profile dev`` mean ``start``, as in MPG;
    ``mpg-tui --migrate`` (MPG's spelling) means ``init --migrate``."""
    if not argv or (argv[0].startswith("-") and argv[0] not in _TOP_LEVEL_FLAGS):
        return ["init" if "--migrate" in argv else "start", *argv]
    return argv


def _launch(entry: str, args: argparse.Namespace, io: Io) -> int:
    try:
        launch = importlib.import_module("mpg_tui.launch")
    except ImportError as exc:
        if exc.name != "mpg_tui.launch":
            raise  # the launcher exists but something it needs is missing: show that
        print(f"mpg-tui: `{entry}` is not available in this build", file=io.stderr)
        return 1
    result: int = getattr(launch, entry)(args)
    return result


def _dispatch(args: argparse.Namespace, io: Io) -> int:
    command: str = args.command
    if command in ("start", "demo"):
        return _launch(command, args, io)
    module_name = {
        "init": "init",
        "status": "status",
        "logs": "logs_cmd",
        "doctor": "doctor",
        "stop": "stop",
        "cockpit": "cockpit",
        "daemon": "daemon",
        "resume": "resume",
    }
    module = importlib.import_module(f"mpg_tui.cli.{module_name[command]}")
    result: int = module.run(args, io)
    return result


def main(argv: list[str] | None = None, *, io: Io | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 1 failure, 2 config or usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(_with_default_command(list(sys.argv[1:] if argv is None else argv)))
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    if args.command == "help":
        parser.print_help(io.stdout if io else sys.stdout)
        return 0

    from mpg_tui.cli.common import EXIT_CONFIG, Io
    from mpg_tui.config import ConfigError
    from mpg_tui.locations import LocationError

    io = io or Io.from_process()
    try:
        return _dispatch(args, io)
    except (ConfigError, LocationError) as exc:
        print(f"mpg-tui: {exc}", file=io.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print(file=io.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
