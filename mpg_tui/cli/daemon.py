"""``mpg-tui daemon install|uninstall|status|logs``: the gateway as a systemd user service.

The unit runs ``mpg-tui --no-ui --profile NAME`` with the Python that runs this command,
restarts it when it fails, reads the profile's ``.env`` files as its environment, and
leaves its output to the journal. ``install --print`` shows the unit and changes nothing.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from mpg_tui.cli.common import EXIT_FAILURE, EXIT_OK, Io
from mpg_tui.locations import resolve_locations, resolve_mpg_home, validate_profile

# Variables that decide where the gateway finds its config, state and logs: the service
# must see the same ones, or `mpg-tui` in a terminal would not find its control socket.
LOCATION_VARIABLES = ("MPG_HOME", "MPG_TUI_STATE_DIR", "MPG_TUI_LOG_DIR")
_SAFE_ARG = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def unit_name(profile: str) -> str:
    return f"mpg-tui-{profile}.service"


def unit_dir(env: Mapping[str, str]) -> Path:
    config_home = env.get("XDG_CONFIG_HOME")
    base = Path(config_home) if config_home else Path(env.get("HOME") or Path.home()) / ".config"
    return base / "systemd" / "user"


def quote(arg: str) -> str:
    """One ``ExecStart`` word, quoted for systemd (which also expands ``%`` and ``$``)."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if _SAFE_ARG.fullmatch(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_unit(profile: str, *, python: str, env: Mapping[str, str], cwd: Path) -> str:
    """The unit file for ``profile``."""
    mpg_home = resolve_mpg_home(env, cwd)
    profile_dir = mpg_home / "profiles" / profile
    command = [python, "-m", "mpg_tui", "--no-ui", "--profile", profile]
    lines = [
        "[Unit]",
        f"Description=mpg-tui gateway (profile {profile})",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"WorkingDirectory={quote(str(profile_dir))}",
        # '-': a missing file is no error; the gateway says itself when the token is missing.
        f"EnvironmentFile=-{quote(str(mpg_home / '.env'))}",
        f"EnvironmentFile=-{quote(str(profile_dir / '.env'))}",
    ]
    for name in LOCATION_VARIABLES:
        if env.get(name):
            lines.append(f"Environment={quote(f'{name}={env[name]}')}")
    lines += [
        "Environment=PYTHONUNBUFFERED=1",
        f"ExecStart={' '.join(quote(a) for a in command)}",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RestartSec=5",
        # Exit status 2 is a broken config: restarting cannot fix it.
        "RestartPreventExitStatus=2",
        "TimeoutStopSec=30",
        "StandardOutput=journal",
        "StandardError=journal",
        f"SyslogIdentifier=mpg-tui-{profile}",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


def _systemctl(run: Runner, io: Io, *args: str) -> bool:
    result = run(["systemctl", "--user", *args])
    if result.returncode != 0:
        print(f"mpg-tui: systemctl --user {' '.join(args)} failed: {result.stderr.strip()}", file=io.stderr)
        return False
    return True


def linger_enabled(run: Runner, user: str) -> bool | None:
    """Whether the user's services outlive their login; None when it cannot be told."""
    try:
        result = run(["loginctl", "show-user", user, "--property=Linger", "--value"])
    except OSError:
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() == "yes"


def run(args: argparse.Namespace, io: Io, *, runner: Runner = _run, python: str | None = None) -> int:
    profile = validate_profile(args.profile)
    name = unit_name(profile)
    path = unit_dir(io.env) / name
    if args.action == "install":
        unit = render_unit(profile, python=python or sys.executable, env=io.env, cwd=io.cwd)
        if args.print:
            io.stdout.write(unit)
            return EXIT_OK
        return _install(profile, path, unit, runner, io)
    if args.action == "uninstall":
        if path.exists():
            _systemctl(runner, io, "disable", "--now", name)
            path.unlink()
            _systemctl(runner, io, "daemon-reload")
            print(f"Removed {path}.", file=io.stdout)
        else:
            print(f"No service is installed for profile {profile} ({path}).", file=io.stdout)
        return EXIT_OK
    if args.action == "status":
        result = runner(["systemctl", "--user", "status", "--no-pager", name])
        io.stdout.write(result.stdout or result.stderr)
        return EXIT_OK if result.returncode == 0 else EXIT_FAILURE
    argv = ["journalctl", "--user", "-u", name, "--no-pager", "-n", "100"]
    if args.follow:
        argv.append("-f")
    # Followed logs stream to the terminal until interrupted; nothing to capture.
    return subprocess.call(argv) if runner is _run else runner(argv).returncode


def _install(profile: str, path: Path, unit: str, runner: Runner, io: Io) -> int:
    locations = resolve_locations(None, profile, io.cwd, io.env)
    if locations.config_path is None or not locations.config_path.is_file():
        print(
            f"mpg-tui: profile {profile} has no config ({locations.config_path}); run `mpg-tui init --profile "
            f"{profile}` first",
            file=io.stderr,
        )
        return EXIT_FAILURE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(unit, encoding="utf-8")
    print(f"Wrote {path}.", file=io.stdout)
    if not (_systemctl(runner, io, "daemon-reload") and _systemctl(runner, io, "enable", "--now", unit_name(profile))):
        return EXIT_FAILURE
    print(f"Started {unit_name(profile)}. Logs: mpg-tui daemon logs --profile {profile}", file=io.stdout)
    user = io.env.get("USER") or io.env.get("LOGNAME") or ""
    if user and linger_enabled(runner, user) is False:
        print(
            f"Note: your user services stop when you log out. To keep the gateway running, run:\n"
            f"  sudo loginctl enable-linger {user}",
            file=io.stdout,
        )
    print("Attach a cockpit to it with `mpg-tui` (same profile) while it runs.", file=io.stdout)
    return EXIT_OK
