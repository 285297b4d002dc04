"""Which gateways a cockpit attaches to: ``mpg-tui`` with the profile's gateway running, ``cockpit --connect``
and the cockpit config's ``remotes``; tokens never from the command line."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import mpg_tui.attach
from mpg_tui import launch
from mpg_tui.__main__ import main
from mpg_tui.cli.common import Io
from mpg_tui.control.client import Endpoint
from mpg_tui.control.remotes import CockpitConfig, Remote, RemotesError, endpoints, load_cockpit_config
from mpg_tui.locations import resolve_locations
from mpg_tui.logs import reset_logging
from mpg_tui.pidfile import PidFile


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "MPG_HOME": str(tmp_path / "mpg"),
        "HOME": str(tmp_path),
        "MPG_TUI_STATE_DIR": str(tmp_path / "state"),
        "MPG_TUI_LOG_DIR": str(tmp_path / "logs"),
    }


@pytest.fixture
def attached(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[Endpoint]]]:
    """Records the gateways the cockpit would attach to instead of opening it."""
    calls: list[list[Endpoint]] = []

    def record(found: list[Endpoint], **_: object) -> int:
        calls.append(list(found))
        return 0

    monkeypatch.setattr(mpg_tui.attach, "run_attached", record)
    yield calls
    reset_logging()  # attaching set up the cockpit's log file


def test_mpg_tui_attaches_when_the_profiles_gateway_runs_and_no_ui_still_refuses(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attached: list[list[Endpoint]]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    locations = resolve_locations(None, "prod", tmp_path, env)
    with PidFile(locations.pid_file):
        args = argparse.Namespace(config=None, profile="prod", no_ui=False, dashboard=None)
        assert launch.start(args) == 0
        (found,) = attached
        assert [e.url for e in found] == [f"unix:{locations.run_dir / 'control.sock'}"]

        args.no_ui = True
        assert launch.start(args) != 0  # no config here, and headless never attaches
    assert len(attached) == 1


def make_io(env: dict[str, str], cwd: Path) -> tuple[Io, io.StringIO]:
    err = io.StringIO()
    return Io(stdin=io.StringIO(), stdout=io.StringIO(), stderr=err, env=env, cwd=cwd), err


def test_cockpit_without_gateways_to_attach_to_says_how_to_start_one(env: dict[str, str], tmp_path: Path) -> None:
    io_, err = make_io(env, tmp_path)
    assert main(["cockpit", "--profile", "prod"], io=io_) == 1
    assert "no gateway of profile prod is running" in err.getvalue()


def test_cockpit_reads_remotes_and_connect_urls_with_tokens_from_files(
    env: dict[str, str], tmp_path: Path, attached: list[list[Endpoint]]
) -> None:
    (tmp_path / "lab.token").write_text("lab-token-0123456789\n", encoding="utf-8")
    (tmp_path / "shared.token").write_text("shared-token-0123456789", encoding="utf-8")
    cockpit_config = tmp_path / "cockpit.json"
    cockpit_config.write_text(
        json.dumps(
            {"remotes": [{"name": "lab", "url": "https://lab.example:8443", "tokenFile": str(tmp_path / "lab.token")}]}
        )
    )
    io_, err = make_io(env, tmp_path)
    argv = ["cockpit", "--connect", "prod=http://127.0.0.1:3101", "--token-file", str(tmp_path / "shared.token")]
    assert main([*argv, "--cockpit-config", str(cockpit_config)], io=io_) == 0, err.getvalue()
    (found,) = attached
    assert [(e.label, e.base_url, e.token) for e in found] == [
        ("prod", "http://127.0.0.1:3101", "shared-token-0123456789"),
        ("lab", "https://lab.example:8443", "lab-token-0123456789"),
    ]


def test_there_is_no_token_option_on_the_command_line(env: dict[str, str], tmp_path: Path) -> None:
    io_, _ = make_io(env, tmp_path)
    assert main(["cockpit", "--connect", "http://127.0.0.1:3100", "--token", "secret"], io=io_) == 2


def test_gateways_need_distinct_names_and_real_urls() -> None:
    twice = ["http://127.0.0.1:3100", "http://127.0.0.1:3100"]
    with pytest.raises(RemotesError, match="named"):
        endpoints(twice, CockpitConfig(), token_file=None, env={})
    with pytest.raises(RemotesError, match="not a gateway address"):
        endpoints(["ftp://x"], CockpitConfig(), token_file=None, env={})
    found = endpoints(
        ["a=http://127.0.0.1:3100"], CockpitConfig(remotes=[Remote(url="unix:/run/x.sock")]), token_file=None, env={}
    )
    assert [e.label for e in found] == ["a", "local"]


def test_a_broken_cockpit_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cockpit.json"
    path.write_text('{"remotes": [{"url": "http://x:1", "token": "inline"}]}')
    with pytest.raises(RemotesError, match=str(path)):
        load_cockpit_config(path)
    assert load_cockpit_config(tmp_path / "missing.json") == CockpitConfig()
