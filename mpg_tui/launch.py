"""Entry points behind ``mpg-tui start`` and ``mpg-tui demo``: build the runtime, pick a face.

Textual is imported only when the cockpit is asked for, so ``--no-ui`` never loads it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

from mpg_tui.config import ConfigError, load_config
from mpg_tui.discord_adapter.client import DiscordStartError
from mpg_tui.locations import Locations, load_env, resolve_locations
from mpg_tui.logs import setup_logging
from mpg_tui.pidfile import AlreadyRunning, MpgPidFile, PidFile, running_pid
from mpg_tui.runtime import Runtime, RuntimeSettings, StartupError

log = logging.getLogger("mpg_tui")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
NARRATED = frozenset({"message_sent", "message_edited", "thread_created"})


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"mpg-tui: {message}\n")
    return code


def start(args: argparse.Namespace) -> int:
    try:
        locations = resolve_locations(args.config, args.profile)
    except ValueError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    if not args.no_ui and running_pid(locations.pid_file) is not None:
        return attach_local(locations)
    try:
        config_path = locations.require_config()
        config = load_config(config_path)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    env = load_env(locations)
    if not env.discord_bot_token:
        return _fail("DISCORD_BOT_TOKEN is not set (looked in the environment, $MPG_HOME/.env and ./.env)", EXIT_CONFIG)
    locations.ensure_dirs()
    setup_logging(
        config.defaults.log_level,
        locations.log_file,
        stderr=bool(args.no_ui),
        secrets=(env.discord_bot_token, env.dashboard_token),
    )
    assert locations.sessions_path is not None
    settings = RuntimeSettings(
        config=config,
        token=env.discord_bot_token,
        sessions_path=locations.sessions_path,
        run_dir=locations.run_dir,
        api_base=env.discord_api_base or config.defaults.discord_api_base,
        dashboard=args.dashboard is not False,
        dashboard_token=env.dashboard_token,
        config_path=config_path,
    )
    log.info("Loaded %d project(s) from config", len(config.projects))
    try:
        with PidFile(locations.pid_file), MpgPidFile(locations.mpg_pid_file):
            runtime = Runtime(settings)
            if args.no_ui:
                return run_headless(runtime.run, runtime.request_stop, reload=runtime.request_reload)
            return run_cockpit(runtime, locations)
    except AlreadyRunning as exc:
        if not args.no_ui:  # it started while we were loading the config
            return attach_local(locations)
        return _fail(str(exc), EXIT_FAILED)
    except StartupError as exc:
        return _fail(str(exc), EXIT_CONFIG)


def attach_local(locations: Locations) -> int:
    """The cockpit over the profile's gateway already running (its control socket)."""
    from mpg_tui.attach import run_attached
    from mpg_tui.control.client import Endpoint
    from mpg_tui.control.server import socket_path

    setup_logging("info", locations.log_dir / "cockpit.log", stderr=False)
    log.info("A gateway of profile %s is running; attaching to it", locations.profile)
    return run_attached([Endpoint(url=f"unix:{socket_path(locations.run_dir)}")])


def run_headless(
    main: Callable[[], Awaitable[None]],
    stop: Callable[[], None],
    *,
    reload: Callable[[], None] | None = None,
) -> int:
    """Run ``main`` until it ends; SIGTERM and SIGINT ask it to stop cleanly, SIGHUP to ``reload``."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        if reload is not None:
            loop.add_signal_handler(signal.SIGHUP, reload)
        await main()

    try:
        asyncio.run(serve())
    except DiscordStartError as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    except StartupError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    return EXIT_OK


def run_cockpit(
    runtime: Runtime,
    locations: Locations | None,
    *,
    run_core: Callable[[], Awaitable[None]] | None = None,
    demo_channels: list[tuple[str, str]] | None = None,
) -> int:
    from mpg_tui.tui.app import make_app

    port = runtime.settings.config.defaults.http_port
    url = None
    if runtime.dashboard is not None and port:
        url = f"http://{runtime.settings.config.defaults.http_host}:{port}/"
    app = make_app(
        runtime.gateway,
        run_core=run_core or runtime.run,
        dashboard_url=url,
        demo_channel_ids=demo_channels,
        claude_command=runtime.settings.claude_command,  # j resumes with the claude the gateway runs
    )
    app.run()
    return EXIT_OK


def demo(args: argparse.Namespace) -> int:
    from mpg_tui.demo import SAMPLE_PROMPT, build_world
    from mpg_tui.sandbox.discord.server import SandboxServer

    try:
        world = build_world(real_claude=bool(args.real_claude))
    except RuntimeError as exc:
        return _fail(str(exc), EXIT_FAILED)
    try:
        setup_logging("info", world.root / "mpg-tui.log", stderr=bool(args.no_ui))
        sandbox = SandboxServer(world.spec)

        async def poster(channel_id: str, _author: str, content: str) -> None:
            await sandbox.post_as_user(channel_id, world.user_id, content)

        settings = RuntimeSettings(
            config=world.config,
            token=world.spec.token,
            sessions_path=world.root / "sessions.json",
            run_dir=world.root / "run",
            claude_command=world.claude_command,
            child_env=world.child_env,
            poster=poster,
            guild_ready_timeout=0.1,
        )
        runtime = Runtime(settings)

        async def run_core() -> None:
            await sandbox.start()
            settings.api_base = sandbox.api_base
            try:
                await runtime.run()
            finally:
                await sandbox.stop()

        if not args.no_ui:
            return run_cockpit(runtime, None, run_core=run_core, demo_channels=world.channels)

        async def narrate() -> None:
            await runtime.client.ready.wait()
            channel_id, label = world.channels[0]
            log.info("Demo: posting %r in %s as you", SAMPLE_PROMPT, label)
            await poster(channel_id, "you", SAMPLE_PROMPT)
            seen = 0
            while True:
                action = await sandbox.wait_for(lambda a: a.kind in NARRATED, timeout=3600, after=seen)
                seen = action.seq
                text = " ".join(action.text.split())
                log.info("Demo: bot %s in %s: %s", action.kind.replace("_", " "), action.channel_id, text[:160])

        async def headless() -> None:
            task = asyncio.create_task(narrate())
            try:
                await run_core()
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        return run_headless(headless, runtime.request_stop)
    finally:
        world.cleanup()
