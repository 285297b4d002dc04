"""The command line and the core stay headless: importing them never loads Textual or discord.py."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import mpg_tui.core

REPO = Path(__file__).resolve().parents[2]
UI_PACKAGES = ("textual", "discord")

PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def loaded_after_importing(*modules: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *modules],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def core_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(mpg_tui.core.__path__, "mpg_tui.core."))


def test_the_probe_does_see_textual_when_it_is_imported() -> None:
    assert "textual" in loaded_after_importing("textual")


def test_the_command_line_imports_neither_textual_nor_discord() -> None:
    modules = ["mpg_tui.__main__", "mpg_tui.cli.common", "mpg_tui.cli.status", "mpg_tui.cli.logs_cmd"]
    modules += ["mpg_tui.cli.doctor", "mpg_tui.cli.init", "mpg_tui.cli.stop"]
    loaded = loaded_after_importing(*modules)
    assert not loaded & set(UI_PACKAGES)


def test_config_locations_logs_and_pidfile_are_headless() -> None:
    loaded = loaded_after_importing("mpg_tui.config", "mpg_tui.locations", "mpg_tui.logs", "mpg_tui.pidfile")
    assert not loaded & set(UI_PACKAGES)


def test_every_core_module_is_headless() -> None:
    modules = core_modules()
    assert "mpg_tui.core.bus" in modules and "mpg_tui.core.events" in modules
    loaded = loaded_after_importing(*modules)
    assert not loaded & set(UI_PACKAGES)
