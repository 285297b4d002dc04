"""``mpg-tui cockpit``: the cockpit alone, attached to running gateways, local or remote.

With no ``--connect`` and no ``remotes`` in the cockpit config, it attaches to the
gateway of the profile running on this machine. Tokens are read from ``--token-file``,
a remote's ``tokenFile`` or ``MPG_DASHBOARD_TOKEN``; the command line never holds one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mpg_tui.cli.common import EXIT_CONFIG, EXIT_FAILURE, Io
from mpg_tui.control.client import Endpoint
from mpg_tui.control.remotes import COCKPIT_CONFIG_NAME, RemotesError, endpoints, load_cockpit_config
from mpg_tui.control.server import socket_path
from mpg_tui.locations import resolve_locations
from mpg_tui.logs import setup_logging
from mpg_tui.pidfile import running_pid


def run(args: argparse.Namespace, io: Io) -> int:
    locations = resolve_locations(args.config, args.profile, io.cwd, io.env)
    config_path = Path(args.cockpit_config) if args.cockpit_config else locations.mpg_home / COCKPIT_CONFIG_NAME
    try:
        found = endpoints(
            args.connect or [],
            load_cockpit_config(config_path),
            token_file=Path(args.token_file).expanduser() if args.token_file else None,
            env=io.env,
        )
    except RemotesError as exc:
        print(f"mpg-tui: {exc}", file=io.stderr)
        return EXIT_CONFIG
    if not found:
        if running_pid(locations.pid_file) is None:
            print(
                f"mpg-tui: no gateway of profile {locations.profile} is running here, and no --connect URL or "
                f"remotes in {config_path} were given; start one with `mpg-tui --no-ui`",
                file=io.stderr,
            )
            return EXIT_FAILURE
        found = [Endpoint(url=f"unix:{socket_path(locations.run_dir)}")]
    setup_logging("info", locations.log_dir / "cockpit.log", stderr=False)
    from mpg_tui.attach import run_attached

    return run_attached(found)
