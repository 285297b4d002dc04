"""``python -m mpg_tui.sandbox.discord``: run the sandbox on its own until SIGTERM/SIGINT.

Prints one JSON line on stdout once it listens (base URL, API base, gateway URL, token
and the IDs of the spec's channels and users), so a script or benchmark can read it and
drive the server through ``/_sandbox/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from mpg_tui.sandbox.discord.server import SandboxServer
from mpg_tui.sandbox.discord.spec import SandboxSpec, SpecError

log = logging.getLogger("mpg_tui.sandbox.discord")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mpg_tui.sandbox.discord", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: 0, a free port)")
    parser.add_argument("--spec", type=Path, help="a JSON spec of the guild (default: a built-in one)")
    parser.add_argument(
        "--channels", default="general", help="comma-separated channel names for the built-in spec (default: general)"
    )
    parser.add_argument("--dump-spec", action="store_true", help="print the spec as JSON and exit")
    parser.add_argument("--log-level", default="WARNING", help="logging level on stderr (default: WARNING)")
    return parser.parse_args(argv)


async def _serve(server: SandboxServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        spec = server.spec
        ready = {
            "base_url": server.base_url,
            "api_base": server.api_base,
            "gateway_url": server.gateway_url,
            "token": spec.token,
            "guild_id": spec.guild.id,
            "bot_id": spec.bot.id,
            "channels": {c.name: c.id for c in spec.channels},
            "users": {u.username: u.id for u in spec.users},
        }
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.spec is not None:
            spec = SandboxSpec.load(args.spec)
        else:
            names = [n.strip() for n in args.channels.split(",") if n.strip()]
            spec = SandboxSpec.default(channels=names or ["general"])
    except SpecError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    if args.dump_spec:
        sys.stdout.write(json.dumps(spec.to_dict(), indent=2) + "\n")
        return 0
    try:
        asyncio.run(_serve(SandboxServer(spec, host=args.host, port=args.port)))
    except OSError as exc:
        sys.stderr.write(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
