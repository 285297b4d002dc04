"""profiles.example/ is MPG's config-home layout, and every file in it loads cleanly."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from mpg_tui.config import config_warnings, load_config
from mpg_tui.locations import load_env, resolve_locations

EXAMPLE = Path(__file__).resolve().parents[2] / "profiles.example"
PROFILES = sorted(p.name for p in (EXAMPLE / "profiles").iterdir())


def test_the_example_has_the_documented_layout() -> None:
    assert PROFILES == ["default", "dev"]
    assert (EXAMPLE / ".env.example").is_file() and (EXAMPLE / "README.md").is_file()


@pytest.mark.parametrize("profile", PROFILES)
def test_each_example_config_loads_without_warnings(profile: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        config = load_config(EXAMPLE / "profiles" / profile / "config.json")
    assert config_warnings(config) == []
    assert caplog.records == []
    assert config.projects


def test_default_shows_every_kind_of_agent_and_access_control() -> None:
    config = load_config(EXAMPLE / "profiles" / "default" / "config.json")
    kinds = {type(p.agents).__name__: p.agents for p in config.projects.values() if p.agents is not None}
    assert set(kinds) == {"list", "dict"}
    specs = [spec for spec in kinds["dict"].values() if spec is not None]
    assert any(s.preset and not s.prompt for s in specs)  # a preset
    assert any(s.preset and s.prompt for s in specs)  # a preset with an extra prompt
    assert any(s.preset is None and s.role and s.prompt for s in specs)  # a custom agent
    assert any(v.allowed_roles and v.rate_limit_per_user for v in config.views())


def test_dev_shows_tmux_and_the_tool_rules() -> None:
    config = load_config(EXAMPLE / "profiles" / "dev" / "config.json")
    assert config.uses_tmux
    args = {v.name: v.claude_args() for v in config.views()}
    assert any("--disallowed-tools" in a for a in args.values())  # disallow-only mode
    assert any("--allowed-tools" in a and "Bash" in a for a in args.values())  # an allowlist override


def test_copied_to_mpg_home_the_profiles_resolve_and_the_env_loads(tmp_path: Path) -> None:
    home = tmp_path / ".mpg"
    shutil.copytree(EXAMPLE / "profiles", home / "profiles")
    shutil.copy(EXAMPLE / ".env.example", home / ".env")
    (home / ".env").chmod(0o600)
    env = {"MPG_HOME": str(home), "MPG_TUI_STATE_DIR": str(tmp_path / "state")}
    default = resolve_locations(None, None, cwd=tmp_path, env=env)
    assert default.config_path == home / "profiles" / "default" / "config.json"
    dev = resolve_locations(None, "dev", cwd=tmp_path, env=env)
    assert dev.config_path is not None and load_config(dev.config_path).uses_tmux
    assert load_env(default, env).discord_bot_token == "your-bot-token-here"
