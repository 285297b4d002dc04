"""``mpg-tui init``: MPG's set-up wizard, and ``init --migrate`` into the config home.

The wizard asks everything first and writes at the end, so a cancelled run writes
nothing. Existing files are updated (projects and other settings kept) only after the
operator agrees; ``.env`` and ``config.json`` are written atomically and private (0600).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from mpg_tui.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, Io
from mpg_tui.config import DEFAULT_CLAUDE_ARGS, ConfigError, is_snowflake, parse_config
from mpg_tui.fsutil import atomic_write
from mpg_tui.locations import (
    DEFAULT_PROFILE,
    ensure_private_dir,
    read_env_file,
    resolve_mpg_home,
    validate_profile,
)

TOKEN_NAME = "DISCORD_BOT_TOKEN"  # noqa: S105 - the variable's name, not a secret
_TOKEN = re.compile(r"[A-Za-z0-9._-]+")
_TOKEN_LINE = re.compile(rf"^\s*(export\s+)?{TOKEN_NAME}\s*=")
PORTAL = "https://discord.com/developers/applications"


class Cancelled(Exception):
    """The operator ended the input (EOF) in the middle of a question."""


class Prompter:
    """Questions on ``io.stdout``, answers from ``io.stdin`` (hidden for secrets on a terminal)."""

    def __init__(self, io: Io) -> None:
        self._in = io.stdin
        self._out = io.stdout

    def say(self, text: str = "") -> None:
        print(text, file=self._out, flush=True)

    def ask(self, question: str) -> str:
        self._out.write(question)
        self._out.flush()
        line = self._in.readline()
        if not line:
            raise Cancelled
        return line.strip()

    def ask_secret(self, question: str) -> str:
        if self._in.isatty():
            try:
                return getpass.getpass(question, stream=self._out).strip()
            except EOFError:
                raise Cancelled from None
        return self.ask(question)

    def confirm(self, question: str) -> bool:
        return self.ask(f"{question} [y/N] ").lower() in {"y", "yes"}


def env_text_with_token(existing: str, token: str) -> str:
    """``existing`` .env text with the token line replaced (or added); other lines kept."""
    lines = existing.splitlines()
    kept = [line for line in lines if not _TOKEN_LINE.match(line)]
    first = next((i for i, line in enumerate(lines) if _TOKEN_LINE.match(line)), None)
    position = len(kept) if first is None else sum(1 for line in lines[:first] if not _TOKEN_LINE.match(line))
    kept.insert(position, f"{TOKEN_NAME}={token}")
    return "\n".join(kept) + "\n"


def _read_existing_config(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(path, [f"cannot update it: {exc}; fix or move it first"]) from None
    if not isinstance(data, dict) or not isinstance(data.get("projects", {}), dict):
        raise ConfigError(path, ["cannot update it: expected a JSON object with a 'projects' object"])
    return data


def _absolute(raw: str, cwd: Path) -> Path:
    path = Path(raw).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else cwd / path))


class Wizard:
    def __init__(self, io: Io, prompter: Prompter) -> None:
        self.io = io
        self.p = prompter

    def check_claude(self) -> None:
        found = shutil.which("claude", path=self.io.env.get("PATH", os.defpath))
        if found:
            self.p.say(f"Claude CLI found: {found}")
        else:
            self.p.say("Warning: `claude` not found on PATH. Install it before starting the gateway.")

    def ask_token(self, existing: str | None) -> str | None:
        hint = " (input hidden; Enter keeps the current one)" if existing else " (input hidden)"
        while True:
            answer = self.p.ask_secret(f"Discord bot token{hint}: ")
            if not answer:
                return existing
            if _TOKEN.fullmatch(answer):
                return answer
            self.p.say("That does not look like a bot token (letters, digits, '.', '_' and '-' only).")

    def ask_directory(self) -> Path:
        while True:
            raw = self.p.ask("Project directory: ")
            if not raw:
                self.p.say("A directory is required.")
                continue
            path = _absolute(raw, self.io.cwd)
            if path.is_dir():
                return path
            if path.exists():
                self.p.say(f"{path} is not a directory.")
                continue
            if self.p.confirm(f"{path} does not exist. Create it?"):
                try:
                    path.mkdir(parents=True)
                except OSError as exc:
                    self.p.say(f"Cannot create {path}: {exc.strerror or exc}")
                    continue
                return path

    def ask_channel(self, taken: dict[str, str]) -> str:
        while True:
            raw = self.p.ask("Discord channel ID: ")
            if not is_snowflake(raw):
                self.p.say(
                    "A channel ID is 17 to 20 digits (Discord: Developer Mode on, right-click the channel, "
                    "Copy Channel ID)."
                )
                continue
            if raw in taken:
                self.p.say(f"Channel {raw} is already mapped to {taken[raw]}.")
                continue
            return raw

    def ask_projects(self, existing: dict[str, Any]) -> dict[str, dict[str, str]]:
        taken = {cid: (p.get("name") if isinstance(p, dict) else None) or cid for cid, p in existing.items()}
        if taken:
            self.p.say(f"\nExisting projects ({len(taken)}):")
            for cid, project in existing.items():
                directory = project.get("directory", "?") if isinstance(project, dict) else "?"
                self.p.say(f"  {taken[cid]} -> {directory} ({cid})")
        self.p.say("\nAdd projects (an empty name finishes):\n")
        added: dict[str, dict[str, str]] = {}
        while True:
            try:
                name = self.p.ask("Project name: ")
            except Cancelled:
                break  # end of input at this question just means "no more projects"
            if not name:
                break
            directory = self.ask_directory()
            channel = self.ask_channel(taken)
            added[channel] = {"name": name, "directory": str(directory)}
            taken[channel] = name
            self.p.say(f"Added {name}.\n")
        return added


def run_init(args: argparse.Namespace, io: Io) -> int:
    p = Prompter(io)
    mpg_home = resolve_mpg_home(io.env, io.cwd)
    profile: str | None = args.profile
    if profile is not None:
        validate_profile(profile)
        config_dir, env_dir = mpg_home / "profiles" / profile, mpg_home
        p.say(f'\nmpg-tui init: set up profile "{profile}"\n')
        p.say(f"Profile directory: {config_dir}")
        p.say(f"Secrets file:      {env_dir / '.env'}\n")
    else:
        config_dir = env_dir = io.cwd
        p.say("\nmpg-tui init: set up the gateway in this directory\n")
    config_path, env_path = config_dir / "config.json", env_dir / ".env"

    existing = _read_existing_config(config_path)
    env_values = read_env_file(env_path) if env_path.exists() else {}
    present = [path for path in (config_path, env_path) if path.exists()]
    wizard = Wizard(io, p)
    try:
        if present:
            p.say("These files exist and will be updated (their other settings and projects are kept):")
            for path in present:
                p.say(f"  {path}")
            if not p.confirm("Continue?"):
                p.say("Nothing written.")
                return EXIT_FAILURE
        wizard.check_claude()
        token = wizard.ask_token(io.env.get(TOKEN_NAME) or env_values.get(TOKEN_NAME))
        if not token:
            p.say(f"A Discord bot token is required. Create one at {PORTAL}")
            return EXIT_FAILURE
        projects = existing.get("projects", {}) if existing else {}
        added = wizard.ask_projects(projects)
    except Cancelled:
        p.say("\nCancelled; nothing written.")
        return EXIT_FAILURE

    data: dict[str, Any] = (
        existing
        if existing is not None
        else {
            "defaults": {"idleTimeoutMs": 1_800_000, "maxConcurrentSessions": 4, "claudeArgs": DEFAULT_CLAUDE_ARGS},
            "projects": {},
        }
    )
    data["projects"] = {**data.get("projects", {}), **added}
    try:
        parse_config(data, config_path)
    except ConfigError as exc:
        p.say(f"The resulting config would not load, so nothing was written:\n{exc}")
        return EXIT_CONFIG

    if profile is not None:
        ensure_private_dir(mpg_home)
        ensure_private_dir(config_dir)
    old_env = env_path.read_text(encoding="utf-8") if env_path.exists() else ""
    # Not fsynced (durable=False): the operator is there to see the result, and can run init again.
    atomic_write(env_path, env_text_with_token(old_env, token), durable=False)
    p.say(f"\nWrote {env_path}")
    atomic_write(config_path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", durable=False)
    p.say(f"Wrote {config_path}")
    if not data["projects"]:
        p.say("No projects configured yet; add them to config.json, or run init again.")
    start = "mpg-tui start" + (f" --profile {profile}" if profile and profile != DEFAULT_PROFILE else "")
    p.say(f"\nSetup complete. Run `{start}` to launch the gateway, or `mpg-tui doctor` to check it.")
    return EXIT_OK


def _config_with_absolute_dirs(src: Path) -> tuple[str | None, int]:
    """The config's text with relative project directories made absolute (they were
    relative to this folder, and the copy lives elsewhere), or ``None`` to copy as is."""
    try:
        data = json.loads(src.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None, 0
    projects = data.get("projects") if isinstance(data, dict) else None
    changed = 0
    for project in projects.values() if isinstance(projects, dict) else ():
        directory = project.get("directory") if isinstance(project, dict) else None
        if isinstance(directory, str) and directory and not Path(directory).expanduser().is_absolute():
            project["directory"] = str(_absolute(directory, src.parent))
            changed += 1
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n", changed) if changed else (None, 0)


def run_migrate(args: argparse.Namespace, io: Io) -> int:
    p = Prompter(io)
    mpg_home = resolve_mpg_home(io.env, io.cwd)
    profile = validate_profile(args.profile or DEFAULT_PROFILE)
    profile_dir = mpg_home / "profiles" / profile
    sessions = next((io.cwd / n for n in ("sessions.json", ".sessions.json") if (io.cwd / n).is_file()), None)
    plan = [
        (io.cwd / ".env", mpg_home / ".env"),
        (io.cwd / "config.json", profile_dir / "config.json"),
        *([(sessions, profile_dir / "sessions.json")] if sessions else []),
    ]
    plan = [(src, dst) for src, dst in plan if src.is_file()]
    if not plan:
        p.say(f"No .env, config.json or sessions file in {io.cwd}: nothing to migrate.")
        return EXIT_OK
    ensure_private_dir(mpg_home)
    ensure_private_dir(profile_dir)
    p.say(f"Migrating into {mpg_home}:")
    skipped = 0
    for src, dst in plan:
        if dst.exists():
            p.say(f"  skipped {src}: {dst} already exists (left as it is)")
            skipped += 1
            continue
        note = ""
        text, changed = _config_with_absolute_dirs(src) if src.name == "config.json" else (None, 0)
        if text is not None:
            atomic_write(dst, text, durable=False)
            note = f" (made {changed} relative project director{'y' if changed == 1 else 'ies'} absolute)"
        else:
            shutil.copy2(src, dst)
            os.chmod(dst, 0o600)  # secrets and session IDs: owner only
        p.say(f"  copied {src} -> {dst}{note}")
    p.say("\nThe originals are left in place.")
    p.say(f"Profile directory: {profile_dir}")
    start = "mpg-tui start" + (f" --profile {profile}" if profile != DEFAULT_PROFILE else "")
    p.say(f"You can now run `{start}` from any directory.")
    return EXIT_FAILURE if skipped else EXIT_OK


def run(args: argparse.Namespace, io: Io) -> int:
    return run_migrate(args, io) if args.migrate else run_init(args, io)
