"""``mpg-tui resume SESSION``: take a session over in this terminal, then hand it back.

Through the control socket of the profile's running gateway: hold the session (its
messages wait, its thread is told), run ``claude --resume <id>`` in its directory with
this terminal, and hand it back when claude exits. The hold is renewed while claude
runs; if this process dies (a closed SSH session, a kill) the gateway takes the session
back when the lease runs out. ``SESSION`` is a session key, a thread ID or an
unambiguous start of a key; an unknown or ambiguous one exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import shutil
import signal
import socket
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from mpg_tui.cli.common import EXIT_CONFIG, EXIT_FAILURE, Io
from mpg_tui.control.client import Endpoint
from mpg_tui.control.protocol import ControlError, ProtocolError
from mpg_tui.control.remote import RemoteCore
from mpg_tui.control.server import socket_path
from mpg_tui.core.holds import HoldError, HoldGrant, IfRunning, keep_hold
from mpg_tui.locations import resolve_locations
from mpg_tui.pidfile import running_pid

log = logging.getLogger(__name__)

USAGE_CODES = frozenset({"not_found", "ambiguous", "no_session"})
"""Hold refusals that mean the SESSION argument was wrong: exit status 2."""
_UNREACHABLE = (aiohttp.ClientError, OSError, ProtocolError, TimeoutError)


def holder_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"mpg-tui resume, {user}@{socket.gethostname()} pid {os.getpid()}"


def claude_argv(grant: HoldGrant, claude: str | None) -> list[str]:
    """``--claude`` if given, else the gateway's claude when it exists here, else ``claude`` on PATH."""
    if claude:
        return [claude, "--resume", grant.session_id]
    command = list(grant.command)
    if command and (shutil.which(command[0]) or Path(command[0]).is_file()):
        return [*command, "--resume", grant.session_id]
    return ["claude", "--resume", grant.session_id]


def _ask(io: Io, key: str) -> IfRunning | None:
    if not io.stdin.isatty():
        return None
    io.stderr.write(f"A run of {key} is in progress. [w]ait for it, [s]top it, or [c]ancel? ")
    io.stderr.flush()
    answer = io.stdin.readline().strip().lower()
    return "wait" if answer.startswith("w") else "stop" if answer.startswith("s") else None


async def run_claude(argv: Sequence[str], cwd: str, env: dict[str, str]) -> int:
    """Run claude on this terminal; Ctrl-C is claude's, a hang-up or TERM is passed on to it."""
    process = await asyncio.create_subprocess_exec(*argv, cwd=cwd, env={**os.environ, **env})
    loop = asyncio.get_running_loop()
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for sig in handled:
        loop.add_signal_handler(sig, _pass_on, process, sig)
    try:
        return await process.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def _pass_on(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    if sig == signal.SIGINT:
        return  # the terminal sent it to claude as well: it is claude's to handle
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)


async def resume(
    endpoint: Endpoint, name: str, io: Io, *, if_running: IfRunning | None, lease_s: float, claude: str | None
) -> int:
    core = RemoteCore(endpoint)
    holder = holder_name()

    def lost(reason: str) -> None:
        io.stderr.write(f"mpg-tui: {reason}; messages for it may run meanwhile\n")

    choice: IfRunning = if_running or "refuse"
    while True:
        try:
            async with keep_hold(core, name, holder, if_running=choice, lease_s=lease_s, on_lost=lost) as grant:
                io.stderr.write(f"Holding {grant.key}: messages for it wait until claude exits here.\n")
                io.stderr.flush()
                status = await run_claude(claude_argv(grant, claude), grant.cwd, grant.env)
            break
        except HoldError as exc:
            if exc.code == "busy" and if_running is None:
                asked = _ask(io, name)
                if asked is not None:
                    choice = asked
                    continue
                io.stderr.write(f"mpg-tui: {exc.message} (--wait or --stop)\n")
                return EXIT_FAILURE
            io.stderr.write(f"mpg-tui: {exc.message}\n")
            return EXIT_CONFIG if exc.code in USAGE_CODES else EXIT_FAILURE
        except ControlError as exc:
            io.stderr.write(f"mpg-tui: the gateway refused: {exc.message}\n")
            return EXIT_FAILURE
        except FileNotFoundError as exc:
            io.stderr.write(f"mpg-tui: cannot run claude: {exc}\n")
            return EXIT_FAILURE
        except _UNREACHABLE as exc:
            io.stderr.write(f"mpg-tui: the gateway at {endpoint.describe()} cannot be reached: {exc}\n")
            return EXIT_FAILURE
    io.stderr.write(f"Handed {grant.key} back to the gateway.\n")
    return status


def run(args: argparse.Namespace, io: Io) -> int:
    locations = resolve_locations(args.config, args.profile, io.cwd, io.env)
    if running_pid(locations.pid_file) is None:
        io.stderr.write(
            f"mpg-tui: no gateway of profile {locations.profile} is running, so there is nothing to hold the "
            "session against; start it, or run claude --resume yourself\n"
        )
        return EXIT_FAILURE
    endpoint = Endpoint(url=f"unix:{socket_path(locations.run_dir)}")
    if_running: IfRunning | None = "wait" if args.wait else "stop" if args.stop else None
    return asyncio.run(
        resume(endpoint, args.session, io, if_running=if_running, lease_s=args.lease, claude=args.claude)
    )
