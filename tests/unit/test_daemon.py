"""``mpg-tui daemon``: the systemd user unit it writes, and what it asks systemctl to do."""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from mpg_tui.cli.common import Io
from mpg_tui.cli.daemon import quote, render_unit, run


def make_io(tmp_path: Path, **env: str) -> tuple[Io, io.StringIO]:
    out = io.StringIO()
    environ = {"HOME": str(tmp_path / "home"), "USER": "ann", "MPG_HOME": str(tmp_path / "mpg"), **env}
    return Io(stdin=io.StringIO(), stdout=out, stderr=io.StringIO(), env=environ, cwd=tmp_path), out


class Systemctl:
    """Records commands instead of running them; loginctl says linger is off."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        out = "no\n" if argv[0] == "loginctl" else ""
        return subprocess.CompletedProcess(list(argv), 0, stdout=out, stderr="")


def args(action: str, *, profile: str = "prod", print_unit: bool = False) -> argparse.Namespace:
    return argparse.Namespace(action=action, profile=profile, print=print_unit, follow=False)


def test_the_unit_runs_the_profile_headless_restarts_on_failure_and_reads_the_env_files(tmp_path: Path) -> None:
    unit = render_unit("prod", python="/opt/py/bin/python", env={"MPG_HOME": "/srv/mpg"}, cwd=tmp_path)
    lines = unit.splitlines()
    assert "ExecStart=/opt/py/bin/python -m mpg_tui --no-ui --profile prod" in lines
    assert "Restart=on-failure" in lines
    assert "RestartPreventExitStatus=2" in lines
    assert "EnvironmentFile=-/srv/mpg/.env" in lines
    assert "EnvironmentFile=-/srv/mpg/profiles/prod/.env" in lines
    assert "Environment=MPG_HOME=/srv/mpg" in lines
    assert "StandardError=journal" in lines
    assert "WantedBy=default.target" in lines
    assert "TOKEN" not in unit  # the token stays in the .env file, never in the unit


def test_odd_characters_in_paths_are_quoted_for_systemd() -> None:
    assert quote("/home/ann/my venv/python") == '"/home/ann/my venv/python"'
    assert quote("100%") == "100%%"
    assert quote("$HOME") == '"$$HOME"'
    assert quote('say "hi"') == '"say \\"hi\\""'


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_rendered_unit_and_would_refuse_a_broken_one(tmp_path: Path) -> None:
    good = tmp_path / "mpg-tui-prod.service"
    good.write_text(render_unit("prod", python=sys.executable, env={}, cwd=tmp_path), encoding="utf-8")
    result = subprocess.run(["systemd-analyze", "verify", str(good)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr

    broken = tmp_path / "broken.service"
    broken.write_text(good.read_text().replace(sys.executable, "python-not-a-path"), encoding="utf-8")
    result = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, check=False)
    assert result.returncode != 0


def test_install_print_shows_the_unit_and_changes_nothing(tmp_path: Path) -> None:
    io_, out = make_io(tmp_path)
    systemctl = Systemctl()
    assert run(args("install", print_unit=True), io_, runner=systemctl, python="/usr/bin/python3") == 0
    assert "ExecStart=/usr/bin/python3 -m mpg_tui --no-ui --profile prod" in out.getvalue()
    assert systemctl.calls == []
    assert not (tmp_path / "home" / ".config").exists()


def test_install_writes_the_unit_enables_it_and_mentions_linger_when_it_is_off(tmp_path: Path) -> None:
    profile_dir = tmp_path / "mpg" / "profiles" / "prod"
    profile_dir.mkdir(parents=True)
    (profile_dir / "config.json").write_text('{"projects": {}}', encoding="utf-8")
    io_, out = make_io(tmp_path)
    systemctl = Systemctl()

    assert run(args("install"), io_, runner=systemctl, python="/usr/bin/python3") == 0

    unit = tmp_path / "home" / ".config" / "systemd" / "user" / "mpg-tui-prod.service"
    assert "--profile prod" in unit.read_text()
    assert ["systemctl", "--user", "daemon-reload"] in systemctl.calls
    assert ["systemctl", "--user", "enable", "--now", "mpg-tui-prod.service"] in systemctl.calls
    assert "loginctl enable-linger ann" in out.getvalue()

    assert run(args("uninstall"), io_, runner=systemctl) == 0
    assert not unit.exists()
    assert ["systemctl", "--user", "disable", "--now", "mpg-tui-prod.service"] in systemctl.calls


def test_install_refuses_a_profile_without_a_config(tmp_path: Path) -> None:
    io_, _ = make_io(tmp_path)
    systemctl = Systemctl()
    assert run(args("install", profile="missing"), io_, runner=systemctl) == 1
    assert systemctl.calls == []
