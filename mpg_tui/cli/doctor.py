"""``mpg-tui doctor``: is everything the gateway needs in place?

Each check is a row: ``ok``, ``warn`` (works, but look), ``fail`` (will not work) or
``info``. The exit status is 0 when nothing failed, 1 when something did, 2 when the
config itself cannot be loaded. Secrets are reported as set or not set, never shown.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.table import Table

from mpg_tui.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, Io, make_console, plain
from mpg_tui.config import SECRET_ENV_NAMES, ConfigError, GatewayConfig, config_warnings, is_snowflake, load_config
from mpg_tui.locations import Locations, env_origin, load_env, resolve_locations
from mpg_tui.pidfile import live_pid_in, running_pid

Status = Literal["ok", "warn", "fail", "info"]
VERSION_TIMEOUT = 5.0
_STYLES: dict[Status, str] = {"ok": "green", "warn": "yellow", "fail": "bold red", "info": "cyan"}
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def probe_version(
    command: Sequence[str], env: Mapping[str, str], timeout: float = VERSION_TIMEOUT
) -> tuple[str | None, str | None]:
    """``(first line of output, None)`` or ``(None, why not)``. Never hangs past ``timeout``.

    The tool runs in its own process group so that, if it hangs, it and anything it
    started are killed together; the pipes then close and reading them ends.
    """
    try:
        proc = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )
    except OSError as exc:
        return None, f"cannot run: {exc.strerror or exc}"
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            proc.communicate(timeout=1.0)
        except subprocess.TimeoutExpired:  # something escaped the group and holds the pipe
            proc.kill()
        return None, f"no answer to {command[-1]} within {timeout:g}s"
    text = output.decode("utf-8", errors="replace").strip()
    first = text.splitlines()[0] if text else ""
    if proc.returncode != 0:
        return None, f"exited {proc.returncode}: {first or 'no output'}"
    return first or "(no version printed)", None


def _child_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in SECRET_ENV_NAMES}


def check_tool(
    name: str, version_args: Sequence[str], env: Mapping[str, str], *, required: bool, why: str, timeout: float
) -> Check:
    path = shutil.which(name, path=env.get("PATH", os.defpath))
    missing: Status = "fail" if required else "warn"
    if path is None:
        return Check(name, missing, f"not found on PATH ({why})")
    version, problem = probe_version([path, *version_args], _child_env(env), timeout)
    if version is None:
        return Check(name, missing, f"{path}: {problem}")
    return Check(name, "ok", f"{version} ({path})")


def _dir_check(label: str, path: Path) -> Check:
    if not path.exists():
        return Check(label, "ok", f"{path} (created at start)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check(label, "warn", f"{path} is mode {mode:04o}; it is made 0700 at start")
    return Check(label, "ok", str(path))


def _port_check(config: GatewayConfig, gateway_pid: int | None, env_token: str | None) -> list[Check]:
    defaults = config.defaults
    if defaults.http_port is False:
        return [Check("dashboard", "info", "disabled (httpPort is false)")]
    checks = []
    host, port = defaults.http_host, defaults.http_port
    if host not in _LOOPBACK and not (defaults.dashboard_token or env_token):
        checks.append(Check("dashboard", "fail", f"binds {host}, beyond loopback, without a dashboardToken"))
    if port == 0:
        return [*checks, Check("dashboard port", "ok", f"{host}: any free port")]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            status: Status = "ok" if gateway_pid else "warn"
            owner = "the running gateway, probably" if gateway_pid else "another program"
            return [*checks, Check("dashboard port", status, f"{host}:{port} is in use ({owner})")]
        return [*checks, Check("dashboard port", "warn", f"{host}:{port}: {exc.strerror or exc}")]
    return [*checks, Check("dashboard port", "ok", f"{host}:{port} is free")]


def _mpg_check(path: Path, gateway_pid: int | None) -> Check:
    """MPG's PID file: a live MPG of this profile stops mpg-tui from starting."""
    pid = live_pid_in(path)
    if pid is None:
        return Check("MPG", "ok", f"not running ({path} names no live process)")
    if pid == gateway_pid:
        return Check("MPG", "info", f"{path} is held by the running mpg-tui (PID {pid})")
    return Check("MPG", "fail", f"running (PID {pid}, PID file {path}): stop it first, e.g. `mpg-tui stop`")


def _project_checks(config: GatewayConfig) -> list[Check]:
    checks = []
    if not config.projects:
        checks.append(Check("projects", "fail", "no projects configured"))
    for view in config.views():
        label = f"project {view.name}"
        directory = Path(view.directory)
        if not directory.is_dir():
            why = "is not a directory" if directory.exists() else "does not exist"
            checks.append(Check(label, "fail", f"{directory} {why}"))
        elif not (directory / ".git").exists():
            status: Status = "warn" if view.worktrees else "ok"
            checks.append(Check(label, status, f"{directory} (not a git repository: no worktrees)"))
        else:
            checks.append(Check(label, "ok", f"{directory} (git repository)"))
        if not is_snowflake(view.channel_id):
            checks.append(Check(label, "fail", f"channel ID {view.channel_id!r} is not 17-20 digits"))
        if view.agents:
            checks.append(Check(label, "info", "agents: " + ", ".join(view.agents)))
    return checks


def diagnose(
    locations: Locations, io: Io, *, timeout: float = VERSION_TIMEOUT
) -> tuple[list[Check], ConfigError | None]:
    """Every check, and the error that kept the config from loading, if one did."""
    env = io.env
    checks = [
        Check(
            "python",
            "ok" if sys.version_info >= (3, 11) else "fail",
            f"{sys.version.split()[0]} ({sys.executable})",
        )
    ]
    config: GatewayConfig | None = None
    config_error: ConfigError | None = None
    if locations.config_path is None:
        looked = ", ".join(str(p) for p in locations.config_candidates)
        checks.append(Check("config", "fail", f"no config.json found (looked in {looked})"))
    else:
        try:
            config = load_config(locations.config_path)
        except ConfigError as exc:
            config_error = exc
            checks.append(Check("config", "fail", str(exc)))
        else:
            count = len(config.projects)
            checks.append(
                Check(
                    "config",
                    "ok",
                    f"{locations.config_path} ({locations.config_source}; {count} project{'s' * (count != 1)})",
                )
            )
            checks += [Check("config", "warn", w) for w in config_warnings(config)]

    uses_tmux = config.uses_tmux if config else False
    uses_git = any(v.worktrees for v in config.views()) if config else True
    checks.append(check_tool("claude", ["--version"], env, required=True, why="the gateway runs it", timeout=timeout))
    checks.append(
        check_tool("tmux", ["-V"], env, required=uses_tmux, why='needed for "persistence": "tmux"', timeout=timeout)
    )
    checks.append(check_tool("git", ["--version"], env, required=uses_git, why="needed for worktrees", timeout=timeout))

    settings = load_env(locations, env)
    origin = env_origin("DISCORD_BOT_TOKEN", locations, env)
    if settings.discord_bot_token:
        checks.append(Check("bot token", "ok", f"set (from {origin})"))
    else:
        checks.append(Check("bot token", "fail", "DISCORD_BOT_TOKEN is not set: run `mpg-tui init`"))
    for path in locations.env_paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            checks.append(Check(".env", "warn", f"{path} is mode {mode:04o}; chmod 600 it"))

    pid = running_pid(locations.pid_file)
    checks.append(Check("gateway", "info", f"running (PID {pid})" if pid else "not running"))
    checks.append(_mpg_check(locations.mpg_pid_file, pid))
    if config is not None:
        checks += _project_checks(config)
        socket_name = config.defaults.tmux_socket
        checks.append(Check("tmux socket", "info", f"{socket_name!r}" + ("" if uses_tmux else " (tmux not used)")))
        checks += _port_check(config, pid, settings.dashboard_token)
        if config.needs_members_intent:
            checks.append(
                Check("intents", "info", "allowedRoles is used: enable the Server Members Intent for the bot")
            )
    checks.append(_dir_check("log dir", locations.log_dir))
    checks.append(_dir_check("state dir", locations.state_dir))
    return checks, config_error


def run(args: argparse.Namespace, io: Io, *, timeout: float = VERSION_TIMEOUT) -> int:
    locations = resolve_locations(args.config, args.profile, io.cwd, io.env)
    checks, config_error = diagnose(locations, io, timeout=timeout)
    console = make_console(io.stdout, io.env)
    table = Table(title=f"mpg-tui doctor (profile {locations.profile})", title_justify="left")
    table.add_column("Check", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Detail")
    for check in checks:
        table.add_row(plain(check.name), plain(check.status, _STYLES[check.status]), plain(check.detail))
    console.print(table)
    failed = [c for c in checks if c.status == "fail"]
    if config_error is not None:
        print(f"mpg-tui: {config_error}", file=io.stderr)
        return EXIT_CONFIG
    if failed:
        console.print(plain(f"{len(failed)} problem{'s' * (len(failed) != 1)} to fix.", "bold red"))
        return EXIT_FAILURE
    console.print(plain("Everything required is in place.", "green"))
    return EXIT_OK
