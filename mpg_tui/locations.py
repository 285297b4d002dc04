"""Where config, secrets, sessions, logs and run files live.

Config and secrets follow MPG's "config home" rules so an MPG user's ``~/.mpg`` or
working directory keeps working:

* ``.env``: the environment first, then ``$MPG_HOME/.env``, then ``$CWD/.env``.
* ``config.json``: ``--config PATH``; ``--profile NAME`` ->
  ``$MPG_HOME/profiles/NAME/config.json``; ``$MPG_HOME/profiles/default/config.json``;
  ``$CWD/config.json``.
* ``sessions.json``: always beside the resolved ``config.json``.

``MPG_HOME`` defaults to ``~/.mpg``. Logs, the PID file and run files are ours alone:
they live in the per-user platform directories (or ``MPG_TUI_LOG_DIR`` /
``MPG_TUI_STATE_DIR``), one folder per profile, private to the user.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Literal

import platformdirs
from dotenv import dotenv_values

from mpg_tui.config import ENV_NAMES, ConfigError, EnvSettings

log = logging.getLogger(__name__)

APP_NAME = "mpg-tui"
DEFAULT_PROFILE = "default"
LOG_FILE_NAME = "mpg-tui.log"
PID_FILE_NAME = "mpg-tui.pid"
_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

ConfigSource = Literal["--config", "--profile", "default profile", "working directory", "not found"]


class LocationError(ValueError):
    """A location that cannot be used: a bad profile name, a directory we cannot secure."""


@dataclass(frozen=True)
class Locations:
    """Every path one gateway instance (one profile) uses. Resolving creates nothing."""

    mpg_home: Path
    profile: str
    """Names this instance: its log, state and PID file are per profile."""
    config_path: Path | None
    """The resolved ``config.json``; ``None`` when no candidate exists."""
    env_paths: tuple[Path, ...]
    """Existing ``.env`` files, highest priority first (the environment beats them all)."""
    sessions_path: Path | None
    log_dir: Path
    log_file: Path
    state_dir: Path
    run_dir: Path
    """Private run files (tmux output and exit codes) of this profile."""
    pid_file: Path
    config_source: ConfigSource = "not found"
    config_candidates: tuple[Path, ...] = ()
    """Where ``config.json`` was looked for, in order (for "not found" messages)."""

    @property
    def mpg_pid_file(self) -> Path:
        """Where MPG keeps the PID file of this profile: ``$MPG_HOME/mpg.pid``, or
        ``mpg-<profile>.pid`` for a profile named with ``--profile``."""
        named = self.config_source == "--profile" and self.profile != DEFAULT_PROFILE
        return self.mpg_home / (f"mpg-{self.profile}.pid" if named else "mpg.pid")

    def require_config(self) -> Path:
        """The config path, or a :class:`ConfigError` that says where it looked."""
        if self.config_path is not None:
            return self.config_path
        looked = ", ".join(str(p) for p in self.config_candidates)
        raise ConfigError(None, [f"no config.json found (looked in {looked}); run `mpg-tui init` to create one"])

    def ensure_dirs(self) -> None:
        """Create the log, state and run directories, private to the user (0700)."""
        for directory in (self.log_dir, self.state_dir, self.run_dir):
            ensure_private_dir(directory)


def ensure_private_dir(path: Path) -> None:
    """Make ``path`` (and missing parents) exist, and make ``path`` itself mode 0700."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(0o700)
    except OSError as exc:
        raise LocationError(f"cannot create a private directory at {path}: {exc.strerror or exc}") from exc


def validate_profile(name: str) -> str:
    """A profile name becomes a directory name: letters, digits, ``_.-``, no leading dot."""
    if _PROFILE_NAME.fullmatch(name) is None:
        raise LocationError(
            f"invalid profile name {name!r}: use up to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def _path_profile(config_path: Path) -> str:
    """A stable profile name for a config outside ``$MPG_HOME/profiles``.

    Two configs in different folders must not share a PID file, so the name carries a
    short hash of the path next to the readable folder name.
    """
    folder = re.sub(r"[^A-Za-z0-9_.-]", "-", config_path.parent.name).strip(".-") or "root"
    digest = hashlib.sha256(str(config_path).encode()).hexdigest()[:8]
    return f"{folder[:48]}-{digest}"


def _user_home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    return Path(home) if home else Path.home()


def resolve_mpg_home(env: Mapping[str, str], cwd: Path) -> Path:
    """``$MPG_HOME`` (``~`` expanded, relative to ``cwd``) or ``~/.mpg``."""
    raw = env.get("MPG_HOME")
    if not raw:
        return _user_home(env) / ".mpg"
    home = Path(raw)
    if raw == "~" or raw.startswith("~/"):
        home = _user_home(env) / raw[2:]
    return home if home.is_absolute() else cwd / home


def _sessions_path(config_path: Path) -> Path:
    current = config_path.parent / "sessions.json"
    # MPG before the config home wrote `.sessions.json` in its working directory. When
    # only that file exists beside the config, keep using it so sessions survive the
    # switch to mpg-tui (and back).
    legacy = config_path.parent / ".sessions.json"
    if not current.exists() and legacy.is_file():
        return legacy
    return current


def resolve_locations(
    config: str | None,
    profile: str | None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Locations:
    """Resolve every path by MPG's precedence. Pure: reads the file system, creates nothing."""
    env = os.environ if env is None else env
    cwd = (cwd or Path.cwd()).absolute()
    if profile is not None:
        validate_profile(profile)
    mpg_home = resolve_mpg_home(env, cwd)
    profiles_dir = mpg_home / "profiles"

    config_path: Path | None
    source: ConfigSource
    candidates: tuple[Path, ...]
    if config:
        expanded = Path(config).expanduser()
        config_path = Path(os.path.normpath(expanded if expanded.is_absolute() else cwd / expanded))
        source, candidates = "--config", (config_path,)
        if profile is None and config_path.parent.parent == profiles_dir:
            name = config_path.parent.name
            profile = name if _PROFILE_NAME.fullmatch(name) else None
        profile = profile or _path_profile(config_path)
    elif profile is not None:
        config_path = profiles_dir / profile / "config.json"
        source, candidates = "--profile", (config_path,)
    else:
        default = profiles_dir / DEFAULT_PROFILE / "config.json"
        in_cwd = cwd / "config.json"
        candidates = (default, in_cwd)
        if default.is_file():
            config_path, source, profile = default, "default profile", DEFAULT_PROFILE
        elif in_cwd.is_file():
            config_path, source, profile = in_cwd, "working directory", _path_profile(in_cwd)
        else:
            config_path, source, profile = None, "not found", DEFAULT_PROFILE

    env_paths: list[Path] = []
    for candidate in (mpg_home / ".env", cwd / ".env"):
        if candidate.is_file() and candidate not in env_paths:
            env_paths.append(candidate)

    log_base = Path(env["MPG_TUI_LOG_DIR"]) if env.get("MPG_TUI_LOG_DIR") else Path(platformdirs.user_log_dir(APP_NAME))
    state_base = (
        Path(env["MPG_TUI_STATE_DIR"]) if env.get("MPG_TUI_STATE_DIR") else Path(platformdirs.user_state_dir(APP_NAME))
    )
    log_dir = log_base.absolute() / profile
    # A level of its own so a profile can never be named like the log folder beside it.
    state_dir = state_base.absolute() / "profiles" / profile
    return Locations(
        mpg_home=mpg_home,
        profile=profile,
        config_path=config_path,
        env_paths=tuple(env_paths),
        sessions_path=_sessions_path(config_path) if config_path is not None else None,
        log_dir=log_dir,
        log_file=log_dir / LOG_FILE_NAME,
        state_dir=state_dir,
        run_dir=state_dir / "run",
        pid_file=state_dir / PID_FILE_NAME,
        config_source=source,
        config_candidates=candidates,
    )


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` pairs of one ``.env`` file (dotenv syntax); empty values are unset."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(path, [f"cannot read: {reason}"]) from None
    if mode & 0o077:
        log.warning("%s is readable by other users; it holds secrets (chmod 600 it)", path)
    values = dotenv_values(stream=StringIO(text), interpolate=False)
    return {key: value for key, value in values.items() if value}


def _merged_env(locations: Locations, env: Mapping[str, str] | None) -> dict[str, tuple[str, str]]:
    """name -> (value, where it came from), by MPG's precedence."""
    merged: dict[str, tuple[str, str]] = {}
    for path in reversed(locations.env_paths):  # lowest priority first; later ones win
        for key, value in read_env_file(path).items():
            if key in ENV_NAMES:
                merged[key] = (value, str(path))
    environ = os.environ if env is None else env
    for key in ENV_NAMES:
        if environ.get(key):
            merged[key] = (environ[key], "environment")
    return merged


def load_env(locations: Locations, env: Mapping[str, str] | None = None) -> EnvSettings:
    """Settings from the environment and the ``.env`` files, without exporting anything.

    Nothing read from a file is put into ``os.environ``: children (claude) inherit the
    environment, and the bot token must never reach them.
    """
    merged = _merged_env(locations, env)
    return EnvSettings.model_validate({key: value for key, (value, _) in merged.items()})


def env_origin(name: str, locations: Locations, env: Mapping[str, str] | None = None) -> str | None:
    """Where ``name`` is set: ``"environment"``, a ``.env`` file's path, or ``None``."""
    found = _merged_env(locations, env).get(name)
    return found[1] if found else None
