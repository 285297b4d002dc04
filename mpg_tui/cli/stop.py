"""``mpg-tui stop``: stop the running gateway of a profile through its PID file.

When no mpg-tui runs for the profile but MPG does (its ``$MPG_HOME/mpg.pid``), MPG is stopped.
"""

from __future__ import annotations

import argparse

from mpg_tui.cli.common import EXIT_FAILURE, EXIT_OK, Io, make_console, plain
from mpg_tui.locations import Locations, resolve_locations
from mpg_tui.pidfile import live_pid_in, running_pid, stop_pid, stop_running


def run(args: argparse.Namespace, io: Io) -> int:
    locations = resolve_locations(args.config, args.profile, io.cwd, io.env)
    console = make_console(io.stdout, io.env)
    pid = running_pid(locations.pid_file)
    if pid is None:
        mpg_pid = live_pid_in(locations.mpg_pid_file)
        if mpg_pid is not None:
            return _stop_mpg(mpg_pid, locations, args.timeout, io)
        console.print(plain(f"mpg-tui is not running (profile {locations.profile})."))
        return EXIT_OK
    console.print(plain(f"Stopping mpg-tui (PID {pid}, profile {locations.profile})..."))
    try:
        stopped = stop_running(locations.pid_file, args.timeout)
    except PermissionError:
        console.print(plain(f"Not allowed to signal PID {pid} (another user's process?).", "bold red"))
        return EXIT_FAILURE
    if not stopped:
        console.print(plain(f"Still running after {args.timeout:g}s. To force it: kill -KILL {pid}", "bold red"))
        return EXIT_FAILURE
    console.print(plain("Stopped.", "green"))
    return EXIT_OK


def _stop_mpg(pid: int, locations: Locations, timeout: float, io: Io) -> int:
    console = make_console(io.stdout, io.env)
    console.print(plain(f"Stopping MPG (PID {pid}, PID file {locations.mpg_pid_file})..."))
    try:
        stopped = stop_pid(pid, timeout)
    except PermissionError:
        console.print(plain(f"Not allowed to signal PID {pid} (another user's process?).", "bold red"))
        return EXIT_FAILURE
    if not stopped:
        console.print(plain(f"Still running after {timeout:g}s. To force it: kill -KILL {pid}", "bold red"))
        return EXIT_FAILURE
    console.print(plain("Stopped.", "green"))
    return EXIT_OK
