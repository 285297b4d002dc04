"""Where things live: MPG's precedence for config and .env, and our private dirs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs
import pytest

from mpg_tui.config import ConfigError
from mpg_tui.locations import (
    LocationError,
    Locations,
    ensure_private_dir,
    env_origin,
    load_env,
    resolve_locations,
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "mpg-home"
    path.mkdir()
    return path


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def env(home: Path, tmp_path: Path) -> dict[str, str]:
    return {
        "MPG_HOME": str(home),
        "HOME": str(tmp_path / "user"),
        "MPG_TUI_LOG_DIR": str(tmp_path / "logs"),
        "MPG_TUI_STATE_DIR": str(tmp_path / "state"),
    }


def write(path: Path, text: str = "{}") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def resolve(cwd: Path, env: dict[str, str], config: str | None = None, profile: str | None = None) -> Locations:
    return resolve_locations(config, profile, cwd=cwd, env=env)


# --- config.json precedence -----------------------------------------------------------


def test_config_flag_wins_over_everything(home: Path, cwd: Path, env: dict[str, str], tmp_path: Path) -> None:
    explicit = write(tmp_path / "elsewhere" / "config.json")
    write(home / "profiles" / "dev" / "config.json")
    write(home / "profiles" / "default" / "config.json")
    write(cwd / "config.json")
    loc = resolve(cwd, env, config=str(explicit), profile="dev")
    assert loc.config_path == explicit
    assert loc.config_source == "--config"
    assert loc.profile == "dev"  # an explicit profile still names the instance


def test_a_relative_config_flag_is_relative_to_the_working_directory(cwd: Path, env: dict[str, str]) -> None:
    loc = resolve(cwd, env, config="conf/../my.json")
    assert loc.config_path == cwd / "my.json"


def test_a_missing_config_flag_path_is_returned_for_the_loader_to_report(cwd: Path, env: dict[str, str]) -> None:
    loc = resolve(cwd, env, config="absent.json")
    assert loc.config_path == cwd / "absent.json"


def test_profile_flag_resolves_into_mpg_home_even_when_missing(home: Path, cwd: Path, env: dict[str, str]) -> None:
    write(home / "profiles" / "default" / "config.json")
    loc = resolve(cwd, env, profile="dev")
    assert loc.config_path == home / "profiles" / "dev" / "config.json"
    assert (loc.config_source, loc.profile) == ("--profile", "dev")


def test_default_profile_wins_over_the_working_directory(home: Path, cwd: Path, env: dict[str, str]) -> None:
    default = write(home / "profiles" / "default" / "config.json")
    write(cwd / "config.json")
    loc = resolve(cwd, env)
    assert (loc.config_path, loc.config_source, loc.profile) == (default, "default profile", "default")


def test_working_directory_config_is_the_fallback(cwd: Path, env: dict[str, str]) -> None:
    in_cwd = write(cwd / "config.json")
    loc = resolve(cwd, env)
    assert (loc.config_path, loc.config_source) == (in_cwd, "working directory")
    assert loc.profile.startswith("work-")


def test_nothing_found_says_where_it_looked(home: Path, cwd: Path, env: dict[str, str]) -> None:
    loc = resolve(cwd, env)
    assert loc.config_path is None and loc.sessions_path is None
    assert loc.config_candidates == (home / "profiles" / "default" / "config.json", cwd / "config.json")
    with pytest.raises(ConfigError, match=r"no config\.json found .*mpg-tui init"):
        loc.require_config()


def test_mpg_home_defaults_to_dot_mpg_in_the_users_home(cwd: Path, tmp_path: Path) -> None:
    loc = resolve(cwd, {"HOME": str(tmp_path / "user"), "MPG_TUI_STATE_DIR": str(tmp_path / "s")})
    assert loc.mpg_home == tmp_path / "user" / ".mpg"


def test_a_relative_or_tilde_mpg_home_is_expanded(cwd: Path, tmp_path: Path) -> None:
    assert resolve(cwd, {"MPG_HOME": "cfg"}).mpg_home == cwd / "cfg"
    assert resolve(cwd, {"MPG_HOME": "~/m", "HOME": str(tmp_path)}).mpg_home == tmp_path / "m"


# --- profiles -------------------------------------------------------------------------


def test_a_config_flag_inside_the_profiles_folder_takes_that_profile_name(
    home: Path, cwd: Path, env: dict[str, str]
) -> None:
    path = write(home / "profiles" / "staging" / "config.json")
    assert resolve(cwd, env, config=str(path)).profile == "staging"


def test_configs_in_different_folders_never_share_a_profile(tmp_path: Path, env: dict[str, str]) -> None:
    first = write(tmp_path / "a" / "app" / "config.json")
    second = write(tmp_path / "b" / "app" / "config.json")
    one = resolve(first.parent, env)
    two = resolve(second.parent, env)
    assert one.profile != two.profile
    assert one.pid_file != two.pid_file
    assert one.profile == resolve(first.parent, env).profile  # stable


@pytest.mark.parametrize("name", ["../etc", ".hidden", "a/b", "", "x" * 65, "sp ace"])
def test_unsafe_profile_names_are_refused(name: str, cwd: Path, env: dict[str, str]) -> None:
    with pytest.raises(LocationError, match="invalid profile name"):
        resolve(cwd, env, profile=name)


# --- sessions.json --------------------------------------------------------------------


def test_sessions_live_beside_the_resolved_config(home: Path, cwd: Path, env: dict[str, str]) -> None:
    loc = resolve(cwd, env, profile="dev")
    assert loc.sessions_path == home / "profiles" / "dev" / "sessions.json"


def test_an_older_dot_sessions_file_is_used_when_it_is_the_only_one(cwd: Path, env: dict[str, str]) -> None:
    write(cwd / "config.json")
    legacy = write(cwd / ".sessions.json", "[]")
    assert resolve(cwd, env).sessions_path == legacy
    current = write(cwd / "sessions.json")
    assert resolve(cwd, env).sessions_path == current


# --- .env -----------------------------------------------------------------------------


def test_env_files_are_listed_home_first_and_only_when_present(home: Path, cwd: Path, env: dict[str, str]) -> None:
    assert resolve(cwd, env).env_paths == ()
    in_cwd = write(cwd / ".env", "A=1")
    in_home = write(home / ".env", "A=2")
    assert resolve(cwd, env).env_paths == (in_home, in_cwd)


def test_env_precedence_is_environment_then_home_then_working_directory(
    home: Path, cwd: Path, env: dict[str, str]
) -> None:
    write(cwd / ".env", "DISCORD_BOT_TOKEN=from-cwd\nMPG_DASHBOARD_TOKEN=dash-cwd\nMPG_DISCORD_API_BASE=http://cwd\n")
    write(home / ".env", "DISCORD_BOT_TOKEN=from-home\nMPG_DASHBOARD_TOKEN=dash-home\n")
    loc = resolve(cwd, env)
    settings = load_env(loc, {**env, "DISCORD_BOT_TOKEN": "from-env"})
    assert settings.discord_bot_token == "from-env"
    assert settings.dashboard_token == "dash-home"
    assert settings.discord_api_base == "http://cwd"
    assert load_env(loc, env).discord_bot_token == "from-home"


def test_an_empty_environment_value_does_not_hide_the_file(home: Path, cwd: Path, env: dict[str, str]) -> None:
    write(home / ".env", "DISCORD_BOT_TOKEN=from-home\n")
    assert load_env(resolve(cwd, env), {**env, "DISCORD_BOT_TOKEN": ""}).discord_bot_token == "from-home"


def test_env_files_understand_dotenv_syntax(home: Path, cwd: Path, env: dict[str, str]) -> None:
    write(home / ".env", '# comment\nexport DISCORD_BOT_TOKEN="quoted.token-1"  # trailing\nOTHER=1\n')
    assert load_env(resolve(cwd, env), env).discord_bot_token == "quoted.token-1"


def test_loading_env_files_exports_nothing(
    home: Path, cwd: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISCORD_BOT_TOKEN", raising=False)
    write(home / ".env", "DISCORD_BOT_TOKEN=never-exported\n")
    assert load_env(resolve(cwd, env), env).discord_bot_token == "never-exported"
    assert "DISCORD_BOT_TOKEN" not in os.environ


def test_env_origin_says_where_a_value_came_from(home: Path, cwd: Path, env: dict[str, str]) -> None:
    path = write(home / ".env", "DISCORD_BOT_TOKEN=x\n")
    loc = resolve(cwd, env)
    assert env_origin("DISCORD_BOT_TOKEN", loc, env) == str(path)
    assert env_origin("DISCORD_BOT_TOKEN", loc, {**env, "DISCORD_BOT_TOKEN": "y"}) == "environment"
    assert env_origin("MPG_DASHBOARD_TOKEN", loc, env) is None


def test_a_world_readable_env_file_is_warned_about(
    home: Path, cwd: Path, env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    path = write(home / ".env", "DISCORD_BOT_TOKEN=x\n")
    path.chmod(0o644)
    with caplog.at_level("WARNING", logger="mpg_tui.locations"):
        load_env(resolve(cwd, env), env)
    assert "is readable by other users" in caplog.text
    path.chmod(0o600)
    caplog.clear()
    with caplog.at_level("WARNING", logger="mpg_tui.locations"):
        load_env(resolve(cwd, env), env)
    assert caplog.text == ""


def test_an_unreadable_env_file_is_a_config_error(home: Path, cwd: Path, env: dict[str, str]) -> None:
    write(home / ".env").write_bytes(b"DISCORD_BOT_TOKEN=\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"\.env: cannot read: not UTF-8 text"):
        load_env(resolve(cwd, env), env)


# --- our own directories --------------------------------------------------------------


def test_overrides_place_log_and_state_dirs_per_profile(cwd: Path, env: dict[str, str], tmp_path: Path) -> None:
    loc = resolve(cwd, env, profile="dev")
    assert loc.log_dir == tmp_path / "logs" / "dev"
    assert loc.log_file == tmp_path / "logs" / "dev" / "mpg-tui.log"
    assert loc.state_dir == tmp_path / "state" / "profiles" / "dev"
    assert loc.run_dir == loc.state_dir / "run"
    assert loc.pid_file == loc.state_dir / "mpg-tui.pid"


def test_without_overrides_platform_dirs_are_used(cwd: Path, tmp_path: Path) -> None:
    loc = resolve(cwd, {"MPG_HOME": str(tmp_path / "h")}, profile="dev")
    assert loc.log_dir == Path(platformdirs.user_log_dir("mpg-tui")) / "dev"
    assert loc.state_dir == Path(platformdirs.user_state_dir("mpg-tui")) / "profiles" / "dev"


def test_resolving_creates_nothing(cwd: Path, env: dict[str, str], tmp_path: Path) -> None:
    resolve(cwd, env, profile="dev")
    assert not (tmp_path / "logs").exists() and not (tmp_path / "state").exists()


def test_dirs_are_created_private(cwd: Path, env: dict[str, str]) -> None:
    loc = resolve(cwd, env, profile="dev")
    loc.ensure_dirs()
    for directory in (loc.log_dir, loc.state_dir, loc.run_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_existing_loose_dirs_are_tightened(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    ensure_private_dir(loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700


def test_a_dir_that_cannot_be_created_is_a_location_error(tmp_path: Path) -> None:
    blocker = write(tmp_path / "file")
    with pytest.raises(LocationError, match="cannot create a private directory"):
        ensure_private_dir(blocker / "sub")
