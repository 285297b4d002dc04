"""The command line: parsing, the launcher hand-off, init, migrate, status, logs, doctor, stop."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mpg_tui import __version__
from mpg_tui.__main__ import build_parser, main
from mpg_tui.cli import logs_cmd
from mpg_tui.cli.common import Io, format_age
from mpg_tui.cli.doctor import probe_version
from mpg_tui.cli.init import env_text_with_token
from mpg_tui.config import ConfigError
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.sessions_file import StoredSession
from mpg_tui.core.store import SessionStore
from mpg_tui.locations import resolve_locations
from mpg_tui.logs import reset_logging, setup_logging
from mpg_tui.pidfile import PidFile

TOKEN = "MTIz.fake-bot-token.value_for_tests"
CID = "123456789012345678"
CID2 = "223456789012345678"
NOW = 1_700_000_000.0


@dataclass
class World:
    """A throwaway MPG_HOME, working directory and environment."""

    root: Path
    home: Path
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def io(self, stdin: str = "") -> Io:
        return Io(
            stdin=io.StringIO(stdin),
            stdout=io.StringIO(),
            stderr=io.StringIO(),
            env=self.env,
            cwd=self.cwd,
            now=lambda: NOW,
        )

    def project_dir(self, name: str = "app", *, git: bool = True) -> Path:
        path = self.root / "projects" / name
        path.mkdir(parents=True, exist_ok=True)
        if git:
            (path / ".git").mkdir(exist_ok=True)
        return path

    def write_config(self, data: Any, profile: str = "default") -> Path:
        path = self.home / "profiles" / profile / "config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
        return path


@pytest.fixture
def world(tmp_path: Path) -> World:
    home, cwd = tmp_path / "mpg-home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {
        "MPG_HOME": str(home),
        "HOME": str(tmp_path / "user"),
        "PATH": os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"]),
        "MPG_TUI_LOG_DIR": str(tmp_path / "logs"),
        "MPG_TUI_STATE_DIR": str(tmp_path / "state"),
    }
    return World(root=tmp_path, home=home, cwd=cwd, env=env)


def out(stream: Any) -> str:
    value: str = stream.getvalue()
    return value


def fake_tool(world: World, name: str, script: str) -> Path:
    path = world.root / "bin" / name
    path.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


# --- parsing and the launcher ---------------------------------------------------------


@pytest.fixture
def launch(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, argparse.Namespace]]:
    calls: list[tuple[str, argparse.Namespace]] = []
    module = types.ModuleType("mpg_tui.launch")

    def start(args: argparse.Namespace) -> int:
        calls.append(("start", args))
        return 0

    def demo(args: argparse.Namespace) -> int:
        calls.append(("demo", args))
        return 3

    module.start = start  # type: ignore[attr-defined]
    module.demo = demo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mpg_tui.launch", module)
    return calls


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mpg-tui {__version__}"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("start", "demo", "init", "status", "logs", "doctor", "stop"):
        assert command in text


def test_the_help_command_prints_help(world: World) -> None:
    stream = world.io()
    assert main(["help"], io=stream) == 0
    assert "usage: mpg-tui" in out(stream.stdout)


def test_a_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "-n", "-3"]) == 2
    assert "expected 0 or more" in capsys.readouterr().err


def test_no_command_means_start(launch: list[tuple[str, argparse.Namespace]], world: World) -> None:
    assert main([], io=world.io()) == 0
    ((name, args),) = launch
    assert (name, args.no_ui, args.profile, args.config, args.dashboard) == ("start", False, None, None, None)


def test_bare_options_are_start_options(launch: list[tuple[str, argparse.Namespace]], world: World) -> None:
    assert main(["--no-ui", "--profile", "dev", "--no-dashboard"], io=world.io()) == 0
    ((name, args),) = launch
    assert (name, args.no_ui, args.profile, args.dashboard) == ("start", True, "dev", False)


def test_start_passes_config_and_dashboard(launch: list[tuple[str, argparse.Namespace]], world: World) -> None:
    main(["start", "--config", "x.json", "--dashboard"], io=world.io())
    assert (launch[0][1].config, launch[0][1].dashboard, launch[0][1].command) == ("x.json", True, "start")


def test_demo_returns_the_launchers_status(launch: list[tuple[str, argparse.Namespace]], world: World) -> None:
    assert main(["demo", "--no-ui", "--real-claude"], io=world.io()) == 3
    ((name, args),) = launch
    assert (name, args.no_ui, args.real_claude) == ("demo", True, True)


def test_a_build_without_the_launcher_says_so(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    monkeypatch.setitem(sys.modules, "mpg_tui.launch", None)
    stream = world.io()
    assert main(["start"], io=stream) == 1
    assert out(stream.stderr).strip() == "mpg-tui: `start` is not available in this build"


def test_a_launcher_whose_own_import_fails_is_not_hidden(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    def broken_import(name: str) -> Any:
        raise ModuleNotFoundError("No module named 'textual'", name="textual")

    monkeypatch.setattr("mpg_tui.__main__.importlib.import_module", broken_import)
    with pytest.raises(ModuleNotFoundError, match="textual"):
        main(["start"], io=world.io())


def test_a_config_error_from_start_exits_2_with_the_message(
    launch: list[tuple[str, argparse.Namespace]], monkeypatch: pytest.MonkeyPatch, world: World
) -> None:
    def start(args: argparse.Namespace) -> int:
        raise ConfigError(Path("/x/config.json"), ["defaults.httpPort: expected a port number or false (got true)"])

    monkeypatch.setattr(sys.modules["mpg_tui.launch"], "start", start)
    stream = world.io()
    assert main(["start"], io=stream) == 2
    assert out(stream.stderr).strip() == (
        "mpg-tui: /x/config.json: defaults.httpPort: expected a port number or false (got true)"
    )


def test_a_bad_profile_name_exits_2(world: World) -> None:
    stream = world.io()
    assert main(["status", "--profile", "../x"], io=stream) == 2
    assert "invalid profile name '../x'" in out(stream.stderr)


def test_parser_defaults() -> None:
    args = build_parser().parse_args(["logs"])
    assert (args.lines, args.level, args.project, args.follow) == (50, None, None, False)
    assert build_parser().parse_args(["stop"]).timeout == 15.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "0s"), (42, "42s"), (300, "5m"), (3 * 3600 + 240, "3h 04m"), (2 * 86400 + 3 * 3600, "2d 03h")],
)
def test_ages_read_naturally(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


# --- init -----------------------------------------------------------------------------


def test_init_writes_config_and_env_in_the_working_directory(world: World) -> None:
    app = world.project_dir()
    answers = f"{TOKEN}\nweb\n{app}\n123\n{CID}\n\n"
    stream = world.io(answers)
    assert main(["init"], io=stream) == 0
    text = out(stream.stdout)
    assert "A channel ID is 17 to 20 digits" in text  # "123" was refused, then asked again
    assert "Warning: `claude` not found on PATH" in text
    config = json.loads((world.cwd / "config.json").read_text(encoding="utf-8"))
    assert config["projects"] == {CID: {"name": "web", "directory": str(app)}}
    assert config["defaults"]["claudeArgs"] == ["--permission-mode", "acceptEdits", "--output-format", "json"]
    assert (world.cwd / ".env").read_text(encoding="utf-8") == f"DISCORD_BOT_TOKEN={TOKEN}\n"
    for name in ("config.json", ".env"):
        assert stat.S_IMODE((world.cwd / name).stat().st_mode) == 0o600
    assert TOKEN not in text


def test_init_finds_claude_on_path(world: World) -> None:
    fake_tool(world, "claude", "echo 2.1.0")
    stream = world.io(f"{TOKEN}\n\n")
    assert main(["init"], io=stream) == 0
    assert f"Claude CLI found: {world.root / 'bin' / 'claude'}" in out(stream.stdout)


def test_init_with_a_profile_writes_into_mpg_home(world: World) -> None:
    app = world.project_dir()
    stream = world.io(f"{TOKEN}\nweb\n{app}\n{CID}\n\n")
    assert main(["init", "--profile", "dev"], io=stream) == 0
    config = json.loads((world.home / "profiles" / "dev" / "config.json").read_text(encoding="utf-8"))
    assert list(config["projects"]) == [CID]
    assert (world.home / ".env").read_text(encoding="utf-8") == f"DISCORD_BOT_TOKEN={TOKEN}\n"
    assert not (world.cwd / "config.json").exists() and not (world.cwd / ".env").exists()
    assert stat.S_IMODE((world.home / "profiles" / "dev").stat().st_mode) == 0o700
    assert "mpg-tui start --profile dev" in out(stream.stdout)


def test_init_offers_to_create_a_missing_directory(world: World) -> None:
    missing = world.root / "new-project"
    not_a_dir = world.root / "file.txt"
    not_a_dir.write_text("x", encoding="utf-8")
    stream = world.io(f"{TOKEN}\nweb\n{not_a_dir}\n{missing}\nn\n{missing}\ny\n{CID}\n\n")
    assert main(["init"], io=stream) == 0
    text = out(stream.stdout)
    assert f"{not_a_dir} is not a directory." in text
    assert text.count(f"{missing} does not exist. Create it?") == 2
    assert missing.is_dir()


def test_init_resolves_a_relative_directory_against_the_working_directory(world: World) -> None:
    (world.cwd / "app").mkdir()
    assert main(["init"], io=world.io(f"{TOKEN}\nweb\napp\n{CID}\n\n")) == 0
    config = json.loads((world.cwd / "config.json").read_text(encoding="utf-8"))
    assert config["projects"][CID]["directory"] == str(world.cwd / "app")


def test_init_refuses_a_channel_that_is_already_mapped(world: World) -> None:
    app = world.project_dir()
    answers = f"{TOKEN}\nweb\n{app}\n{CID}\napi\n{app}\n{CID}\n{CID2}\n\n"
    stream = world.io(answers)
    assert main(["init"], io=stream) == 0
    assert f"Channel {CID} is already mapped to web." in out(stream.stdout)
    config = json.loads((world.cwd / "config.json").read_text(encoding="utf-8"))
    assert list(config["projects"]) == [CID, CID2]


def test_init_refuses_to_touch_existing_files_without_confirmation(world: World) -> None:
    (world.cwd / "config.json").write_text('{"projects": {}}', encoding="utf-8")
    (world.cwd / ".env").write_text("KEEP=1\n", encoding="utf-8")
    stream = world.io("n\n")
    assert main(["init"], io=stream) == 1
    assert "Nothing written." in out(stream.stdout)
    assert (world.cwd / "config.json").read_text(encoding="utf-8") == '{"projects": {}}'
    assert (world.cwd / ".env").read_text(encoding="utf-8") == "KEEP=1\n"


def test_init_updates_existing_files_keeping_projects_and_other_settings(world: World) -> None:
    old = {"defaults": {"logLevel": "debug"}, "projects": {CID: {"name": "old", "directory": "/srv/old"}}}
    (world.cwd / "config.json").write_text(json.dumps(old), encoding="utf-8")
    (world.cwd / ".env").write_text("# mine\nDISCORD_BOT_TOKEN=old-token\nMPG_DASHBOARD_TOKEN=dash\n", encoding="utf-8")
    app = world.project_dir()
    stream = world.io(f"y\n{TOKEN}\nnew\n{app}\n{CID2}\n\n")
    assert main(["init"], io=stream) == 0
    assert "old -> /srv/old" in out(stream.stdout)
    config = json.loads((world.cwd / "config.json").read_text(encoding="utf-8"))
    assert config["defaults"] == {"logLevel": "debug"}
    assert list(config["projects"]) == [CID, CID2]
    assert (world.cwd / ".env").read_text(encoding="utf-8") == (
        f"# mine\nDISCORD_BOT_TOKEN={TOKEN}\nMPG_DASHBOARD_TOKEN=dash\n"
    )


def test_init_keeps_the_existing_token_on_enter(world: World) -> None:
    stream = world.io("y\n\n\n")
    (world.cwd / ".env").write_text("DISCORD_BOT_TOKEN=kept.token\n", encoding="utf-8")
    assert main(["init"], io=stream) == 0
    assert "Enter keeps the current one" in out(stream.stdout)
    assert (world.cwd / ".env").read_text(encoding="utf-8") == "DISCORD_BOT_TOKEN=kept.token\n"


def test_init_without_any_token_writes_nothing(world: World) -> None:
    stream = world.io("\n")
    assert main(["init"], io=stream) == 1
    assert "A Discord bot token is required" in out(stream.stdout)
    assert not (world.cwd / ".env").exists() and not (world.cwd / "config.json").exists()


def test_init_refuses_something_that_is_not_a_token(world: World) -> None:
    stream = world.io(f"not a token\n{TOKEN}\n\n")
    assert main(["init"], io=stream) == 0
    assert "does not look like a bot token" in out(stream.stdout)


def test_init_cancelled_mid_project_writes_nothing(world: World) -> None:
    stream = world.io(f"{TOKEN}\nweb\n")
    assert main(["init"], io=stream) == 1
    assert "Cancelled; nothing written." in out(stream.stdout)
    assert not (world.cwd / ".env").exists() and not (world.cwd / "config.json").exists()


def test_init_will_not_update_a_config_it_cannot_parse(world: World) -> None:
    (world.cwd / "config.json").write_text("{broken", encoding="utf-8")
    stream = world.io("y\n")
    assert main(["init"], io=stream) == 2
    assert f"{world.cwd / 'config.json'}: cannot update it" in out(stream.stderr)
    assert (world.cwd / "config.json").read_text(encoding="utf-8") == "{broken"


def test_the_token_line_is_replaced_in_place() -> None:
    assert env_text_with_token("A=1\nexport DISCORD_BOT_TOKEN=x\nB=2", "new") == "A=1\nDISCORD_BOT_TOKEN=new\nB=2\n"
    assert env_text_with_token("", "new") == "DISCORD_BOT_TOKEN=new\n"


# --- init --migrate -------------------------------------------------------------------


def test_migrate_copies_into_the_default_profile_and_leaves_originals(world: World) -> None:
    (world.cwd / ".env").write_text(f"DISCORD_BOT_TOKEN={TOKEN}\n", encoding="utf-8")
    (world.cwd / "config.json").write_text(json.dumps({"projects": {CID: {"directory": "/srv/a"}}}), encoding="utf-8")
    (world.cwd / ".sessions.json").write_text("{}", encoding="utf-8")
    stream = world.io()
    assert main(["init", "--migrate"], io=stream) == 0
    profile = world.home / "profiles" / "default"
    assert (world.home / ".env").read_text(encoding="utf-8") == f"DISCORD_BOT_TOKEN={TOKEN}\n"
    assert json.loads((profile / "config.json").read_text(encoding="utf-8")) == {
        "projects": {CID: {"directory": "/srv/a"}}
    }
    assert (profile / "sessions.json").read_text(encoding="utf-8") == "{}"
    assert stat.S_IMODE((world.home / ".env").stat().st_mode) == 0o600
    for name in (".env", "config.json", ".sessions.json"):
        assert (world.cwd / name).exists()
    text = out(stream.stdout)
    assert f"copied {world.cwd / '.sessions.json'} -> {profile / 'sessions.json'}" in text
    assert "originals are left in place" in text
    assert TOKEN not in text


def test_migrate_never_overwrites_and_says_so(world: World) -> None:
    (world.cwd / "config.json").write_text('{"projects": {}}', encoding="utf-8")
    target = world.write_config({"projects": {CID: {"directory": "/keep"}}})
    stream = world.io()
    assert main(["init", "--migrate"], io=stream) == 1
    assert f"skipped {world.cwd / 'config.json'}: {target} already exists" in out(stream.stdout)
    assert json.loads(target.read_text(encoding="utf-8"))["projects"][CID]["directory"] == "/keep"


def test_migrate_makes_relative_directories_absolute_in_the_copy(world: World) -> None:
    (world.cwd / "config.json").write_text(json.dumps({"projects": {CID: {"directory": "./app"}}}), encoding="utf-8")
    stream = world.io()
    assert main(["init", "--migrate"], io=stream) == 0
    copied = json.loads((world.home / "profiles" / "default" / "config.json").read_text(encoding="utf-8"))
    assert copied["projects"][CID]["directory"] == str(world.cwd / "app")
    assert "made 1 relative project directory absolute" in out(stream.stdout)


def test_migrate_with_nothing_to_copy_says_so(world: World) -> None:
    stream = world.io()
    assert main(["init", "--migrate"], io=stream) == 0
    assert "nothing to migrate" in out(stream.stdout)
    assert not (world.home / "profiles").exists()


# --- status ---------------------------------------------------------------------------


def write_sessions(world: World, data: Any) -> None:
    (world.home / "profiles" / "default" / "sessions.json").write_text(json.dumps(data), encoding="utf-8")


def test_status_shows_sessions_with_project_names_agents_and_age(world: World) -> None:
    world.write_config({"projects": {CID: {"name": "web", "directory": "/srv/web"}}})
    write_sessions(
        world,
        {
            "900000000000000001": {  # as MPG writes it: projectKey is the session key
                "sessionId": "sess-a",
                "projectKey": "900000000000000001",
                "cwd": "/srv/web",
                "lastActivity": (NOW - 300) * 1000,
            },
            "900000000000000002:pm": {  # as mpg-tui writes it: channelId names the project
                "sessionId": "sess-b",
                "projectKey": "900000000000000002:pm",
                "channelId": CID2,
                "cwd": "/srv/x",
                "lastActivity": (NOW - 7200) * 1000,
                "worktreePath": "/srv/web/.worktrees/900000000000000002-pm",
            },
            "broken": {"sessionId": 5},
        },
    )
    world.env["DISCORD_BOT_TOKEN"] = TOKEN
    stream = world.io()
    assert main(["status"], io=stream) == 0
    text = out(stream.stdout)
    assert "Gateway:  not running" in text
    assert "1 malformed session entry skipped" in text
    rows = [line for line in text.splitlines() if "sess-" in line]
    assert "web" in rows[0] and "900000000000000001" in rows[0] and "5m" in rows[0]
    assert f"{CID2} (not in config)" in rows[1] and " pm " in rows[1] and "2h 00m" in rows[1]
    assert "/srv/web/.worktrees/900000000000000002-pm" in rows[1]
    assert TOKEN not in text + out(stream.stderr)


def test_status_names_the_projects_of_sessions_our_own_store_wrote(world: World) -> None:
    world.write_config({"projects": {CID: {"name": "web", "directory": "/srv/web"}}})
    store = SessionStore(world.home / "profiles" / "default" / "sessions.json", clock=FakeClock(NOW))
    store.put(
        StoredSession(
            key="900000000000000003",
            session_id=None,
            cwd="/srv/web",
            last_activity_ms=int(NOW * 1000),
            channel_id=CID,
            thread_id="900000000000000003",
        )
    )
    assert store.save_now()
    stream = world.io()
    assert main(["status"], io=stream) == 0
    text = out(stream.stdout)
    assert "malformed" not in text
    (row,) = [line for line in text.splitlines() if "900000000000000003" in line]
    assert "web" in row and "not in config" not in row and "no run finished yet" in row


def test_status_reads_the_older_list_format(world: World) -> None:
    world.write_config({"projects": {CID: {"name": "web", "directory": "/srv/web"}}})
    write_sessions(world, [{"sessionId": "sess-old", "projectKey": CID, "cwd": "/srv/web", "lastActivity": 0}])
    stream = world.io()
    assert main(["status"], io=stream) == 0
    assert "sess-old" in out(stream.stdout)


def test_status_reports_a_running_gateway(world: World) -> None:
    world.write_config({"projects": {}})
    locations = resolve_locations(None, None, world.cwd, world.env)
    with PidFile(locations.pid_file):
        stream = world.io()
        assert main(["status"], io=stream) == 0
    assert f"Gateway:  running (PID {os.getpid()})" in out(stream.stdout)
    assert "No sessions file yet" in out(stream.stdout)


def test_status_with_an_unreadable_sessions_file_fails_clearly(world: World) -> None:
    world.write_config({"projects": {}})
    (world.home / "profiles" / "default" / "sessions.json").write_text("{nope", encoding="utf-8")
    stream = world.io()
    assert main(["status"], io=stream) == 1
    assert "cannot read sessions" in out(stream.stderr)


def test_status_with_a_broken_config_exits_2_naming_file_and_field(world: World) -> None:
    path = world.write_config({"projects": {CID: {"directory": "/a", "agents": {"pm": {"preset": "wizard"}}}}})
    stream = world.io()
    assert main(["status"], io=stream) == 2
    assert f"{path}: projects.{CID}.agents.pm.preset: unknown preset 'wizard'" in out(stream.stderr)


def test_status_without_any_config_exits_2(world: World) -> None:
    stream = world.io()
    assert main(["status"], io=stream) == 2
    assert "no config.json found" in out(stream.stderr)


# --- logs -----------------------------------------------------------------------------


@pytest.fixture
def logged(world: World) -> Iterator[Path]:
    world.write_config({"projects": {CID: {"name": "web", "directory": "/srv/web"}}})
    log_file = resolve_locations(None, None, world.cwd, world.env).log_file
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    setup_logging("debug", log_file, stderr=False)
    log = logging.getLogger("mpg_tui.core")
    log.debug("debug line")
    log.info("web info", extra={"project": CID})
    log.warning("web warning", extra={"project": CID})
    log.error("other error", extra={"project": CID2})
    reset_logging()
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    yield log_file


def log_lines(world: World, *argv: str) -> list[str]:
    stream = world.io()
    assert main(["logs", *argv], io=stream) == 0
    return out(stream.stdout).splitlines()


def test_logs_shows_every_entry_readably(world: World, logged: Path) -> None:
    lines = log_lines(world)
    assert len(lines) == 4
    assert "debug mpg_tui.core: debug line" in lines[0]
    assert f"warn  mpg_tui.core: web warning  project={CID}" in lines[2]


def test_logs_filters_by_minimum_level(world: World, logged: Path) -> None:
    assert [line.split(": ", 1)[1].split("  ")[0] for line in log_lines(world, "--level", "warn")] == [
        "web warning",
        "other error",
    ]


def test_logs_filters_by_project_name_or_channel(world: World, logged: Path) -> None:
    by_name = log_lines(world, "--project", "WEB")
    assert [line.split(": ", 1)[1].split("  ")[0] for line in by_name] == ["web info", "web warning"]
    assert log_lines(world, "--project", CID) == by_name
    assert len(log_lines(world, "--project", CID2)) == 1


def test_logs_shows_the_last_n(world: World, logged: Path) -> None:
    lines = log_lines(world, "-n", "2")
    assert "web warning" in lines[0] and "other error" in lines[1] and len(lines) == 2


def test_logs_without_a_file_says_so(world: World) -> None:
    assert "No log file yet" in log_lines(world)[0]


def test_logs_never_reads_markup_in_messages(world: World, logged: Path) -> None:
    with logged.open("a", encoding="utf-8") as handle:
        handle.write(
            json.dumps({"ts": "2024-01-01T00:00:00Z", "level": "info", "logger": "x", "msg": "[bold]x[/]"}) + "\n"
        )
    assert log_lines(world, "-n", "1")[0].endswith("x: [bold]x[/]")


def test_logs_follow_prints_new_entries_across_a_rotation(world: World, logged: Path) -> None:
    polls: list[int] = []

    def sleep(_: float) -> None:
        polls.append(1)
        if len(polls) == 1:
            with logged.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"ts": "2024-01-01T00:00:00Z", "level": "warn", "msg": "appended"}) + "\n")
                handle.write('{"ts": "2024-01-01T00:00:01Z", "level": "warn", "msg": "tail of old file"}\n')
            logged.rename(logged.with_name(logged.name + ".1"))
            logged.write_text(
                json.dumps({"ts": "2024-01-01T00:00:02Z", "level": "info", "msg": "new file"}) + "\n" + '{"partial',
                encoding="utf-8",
            )

    args = build_parser().parse_args(["logs", "--follow", "-n", "0", "--level", "info"])
    stream = world.io()
    assert logs_cmd.run(args, stream, should_stop=lambda: len(polls) >= 2, sleep=sleep) == 0
    lines = out(stream.stdout).splitlines()
    assert [line.split(" ", 3)[3].strip() for line in lines] == ["appended", "tail of old file", "new file"]


# --- doctor ---------------------------------------------------------------------------


def healthy(world: World) -> Path:
    fake_tool(world, "claude", "echo '2.1.0 (Claude Code)'")
    app = world.project_dir()
    (world.home / ".env").write_text(f"DISCORD_BOT_TOKEN={TOKEN}\n", encoding="utf-8")
    (world.home / ".env").chmod(0o600)
    return world.write_config(
        {"defaults": {"httpPort": False}, "projects": {CID: {"name": "web", "directory": str(app), "agents": ["pm"]}}}
    )


def test_doctor_passes_when_everything_required_is_there(world: World) -> None:
    healthy(world)
    stream = world.io()
    assert main(["doctor"], io=stream) == 0
    text = out(stream.stdout)
    assert "2.1.0 (Claude Code)" in text
    assert "set (from" in text
    assert "(git repository)" in text
    assert "agents: pm" in text
    assert "Everything required is in place." in text
    assert TOKEN not in text and TOKEN[-4:] not in text


def test_doctor_fails_on_a_missing_directory_claude_and_token(world: World) -> None:
    world.write_config({"defaults": {"httpPort": False}, "projects": {"42": {"directory": str(world.root / "gone")}}})
    stream = world.io()
    assert main(["doctor"], io=stream) == 1
    text = out(stream.stdout)
    assert f"{world.root / 'gone'} does not exist" in text
    assert "channel ID '42' is not 17-20 digits" in text
    assert "DISCORD_BOT_TOKEN is not set" in text
    assert "not found on PATH" in text


def test_doctor_does_not_hang_on_a_hanging_claude(world: World) -> None:
    healthy(world)
    fake_tool(world, "claude", "sleep 60\necho never")
    args = build_parser().parse_args(["doctor"])
    from mpg_tui.cli import doctor

    stream = world.io()
    assert doctor.run(args, stream, timeout=0.3) == 1
    assert "no answer to --version within 0.3s" in out(stream.stdout)


def test_probe_version_reports_a_failing_tool(world: World) -> None:
    tool = fake_tool(world, "bad", "echo oops >&2\nexit 3")
    assert probe_version([str(tool), "--version"], world.env) == (None, "exited 3: oops")


def test_doctor_never_passes_secrets_to_the_tools_it_runs(world: World) -> None:
    tool = fake_tool(world, "env-dump", 'echo "token=${DISCORD_BOT_TOKEN:-none}"')
    from mpg_tui.cli.doctor import check_tool

    check = check_tool("env-dump", [], {**world.env, "DISCORD_BOT_TOKEN": TOKEN}, required=True, why="", timeout=5)
    assert check.detail == f"token=none ({tool})"


def test_doctor_reports_a_dashboard_port_in_use(world: World) -> None:
    healthy(world)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = json.loads((world.home / "profiles" / "default" / "config.json").read_text(encoding="utf-8"))
        config["defaults"]["httpPort"] = port
        world.write_config(config)
        stream = world.io()
        assert main(["doctor"], io=stream) == 0
    assert f"127.0.0.1:{port} is in use (another program)" in out(stream.stdout)


def test_doctor_fails_a_public_dashboard_without_a_token(world: World) -> None:
    healthy(world)
    config = json.loads((world.home / "profiles" / "default" / "config.json").read_text(encoding="utf-8"))
    config["defaults"].update(httpPort=0, httpHost="0.0.0.0")
    world.write_config(config)
    stream = world.io()
    assert main(["doctor"], io=stream) == 1
    assert "binds 0.0.0.0, beyond loopback, without a dashboardToken" in out(stream.stdout)


def test_doctor_with_a_broken_config_exits_2(world: World) -> None:
    healthy(world)
    path = world.write_config('{"defaults": {"httpPort": true}}')
    stream = world.io()
    assert main(["doctor"], io=stream) == 2
    assert f"{path}: defaults.httpPort: expected a port number or false (got true)" in out(stream.stderr)


def test_doctor_warns_about_a_readable_env_file_and_loose_dirs(world: World) -> None:
    healthy(world)
    (world.home / ".env").chmod(0o644)
    locations = resolve_locations(None, None, world.cwd, world.env)
    locations.log_dir.mkdir(parents=True)
    locations.log_dir.chmod(0o755)
    stream = world.io()
    assert main(["doctor"], io=stream) == 0
    text = out(stream.stdout)
    assert "is mode 0644; chmod 600 it" in text
    assert "is mode 0755; it is made 0700 at start" in text


# --- stop -----------------------------------------------------------------------------


def test_stop_with_nothing_running_says_so(world: World) -> None:
    stream = world.io()
    assert main(["stop", "--profile", "dev"], io=stream) == 0
    assert "mpg-tui is not running (profile dev)." in out(stream.stdout)


def test_stop_terminates_the_running_instance(world: World) -> None:
    locations = resolve_locations(None, "dev", world.cwd, world.env)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from mpg_tui.pidfile import PidFile; "
            "PidFile(Path(sys.argv[1])).acquire(); print('ready', flush=True); sys.stdin.read()",
            str(locations.pid_file),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        stream = world.io()
        assert main(["stop", "--profile", "dev"], io=stream) == 0
        assert f"Stopping mpg-tui (PID {holder.pid}, profile dev)" in out(stream.stdout)
        assert holder.wait(timeout=10) == -15
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        for pipe in (holder.stdin, holder.stdout):
            if pipe:
                pipe.close()


# --- as a real process ----------------------------------------------------------------


def run_cli(world: World, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**world.env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run(
        [sys.executable, "-m", "mpg_tui", *argv],
        cwd=world.cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_module_runs_as_a_program(world: World) -> None:
    version = run_cli(world, "--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"mpg-tui {__version__}")
    usage = run_cli(world, "--help")
    assert usage.returncode == 0 and "doctor" in usage.stdout


def test_doctor_runs_as_a_program(world: World) -> None:
    healthy(world)
    result = run_cli(world, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Everything required is in place." in result.stdout


def test_a_broken_config_exits_2_with_its_path_on_stderr(world: World) -> None:
    path = world.write_config('{"projects": {"1": {"directory": 5}}}')
    result = run_cli(world, "status")
    assert result.returncode == 2
    assert f"{path}: projects.1.directory: expected a valid string (got 5)" in result.stderr


def test_passing_the_bot_token_to_claude_is_a_config_error_that_stops_the_start(world: World) -> None:
    path = world.write_config(json.dumps({"defaults": {"passEnv": ["DISCORD_BOT_TOKEN"]}, "projects": {}}))
    world.env["DISCORD_BOT_TOKEN"] = TOKEN
    result = run_cli(world, "--no-ui")
    assert result.returncode == 2
    assert f"{path}: defaults.passEnv[0]: DISCORD_BOT_TOKEN is the gateway's own secret" in result.stderr
    assert TOKEN not in result.stderr


def test_top_level_help_shows_the_everyday_options_of_start(world: World) -> None:
    usage = run_cli(world, "--help")
    assert usage.returncode == 0
    options = usage.stdout.split("options of start, the default command:", 1)[1]
    for flag in ("--no-ui", "--profile NAME", "--config PATH", "--no-dashboard"):
        assert flag in options
    assert "--migrate" in usage.stdout


def test_migrate_as_mpg_spells_it_copies_like_init_migrate(world: World) -> None:
    (world.cwd / "config.json").write_text(json.dumps({"projects": {CID: {"directory": "/srv/a"}}}), encoding="utf-8")
    result = run_cli(world, "--migrate")
    assert result.returncode == 0, result.stderr
    assert (world.home / "profiles" / "default" / "config.json").is_file()
    assert "originals are left in place" in result.stdout


def test_the_resume_commands_default_lease_is_the_cores() -> None:
    from mpg_tui import __main__
    from mpg_tui.core.holds import DEFAULT_LEASE_S

    assert __main__.DEFAULT_LEASE_S == DEFAULT_LEASE_S
    args = __main__.build_parser().parse_args(["resume", "1234", "--stop"])
    assert (args.session, args.stop, args.wait, args.lease) == ("1234", True, False, DEFAULT_LEASE_S)
