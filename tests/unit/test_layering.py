"""The arrows between packages point one way: adapters and faces depend on the core, never back.

Read from the source with :mod:`ast`, so a forbidden import fails here even on a path no
other test happens to exercise.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mpg_tui"
ADAPTERS = ("mpg_tui.runners", "mpg_tui.discord_adapter", "mpg_tui.worktrees", "mpg_tui.dashboard", "mpg_tui.tui")
ADAPTERS += ("mpg_tui.sandbox", "mpg_tui.runtime", "mpg_tui.launch", "mpg_tui.cli", "mpg_tui.control")
CORE_PUBLIC_API = ("mpg_tui.core.api", "mpg_tui.core.events", "mpg_tui.core.bus", "mpg_tui.core.clock")
FACES = ("tui", "dashboard")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def sources(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", sources("core"), ids=lambda p: p.name)
def test_the_core_imports_no_adapter_and_no_face(path: Path) -> None:
    forbidden = {m for m in imported_modules(path) if any(is_under(m, a) for a in ADAPTERS)}
    assert not forbidden, f"{path.name} imports {sorted(forbidden)}"


@pytest.mark.parametrize("path", [p for face in FACES for p in sources(face)], ids=lambda p: p.name)
def test_a_face_uses_only_the_cores_public_api(path: Path) -> None:
    core = {m for m in imported_modules(path) if is_under(m, "mpg_tui.core")}
    private = {m for m in core if m != "mpg_tui.core" and not any(is_under(m, api) for api in CORE_PUBLIC_API)}
    assert not private, f"{path.relative_to(PACKAGE)} reaches into {sorted(private)}"


def test_the_checks_see_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from mpg_tui.runners.tmux import TmuxRunner\nimport mpg_tui.core.sessions\n", encoding="utf-8")
    found = imported_modules(sample)
    assert any(is_under(m, "mpg_tui.runners") for m in found)
    assert "mpg_tui.core.sessions" in found
