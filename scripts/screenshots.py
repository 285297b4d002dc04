"""Drive the real cockpit with Pilot and save SVG + PNG pictures of its main screens.

    .venv/bin/python scripts/screenshots.py [--out screenshots] [--png auto|cairosvg|chromium|none]

The cockpit runs on the sandbox's demo world (the real gateway on an in-memory chat and
scripted runs, frozen clock), so the pictures only change when the UI does. Textual exports SVG; PNG comes from
cairosvg when it is importable, otherwise from headless Chromium (``scripts/ensure-chromium``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.pilot import Pilot  # noqa: E402

from mpg_tui.core.clock import FakeClock  # noqa: E402
from mpg_tui.core.events import ApprovalRequested  # noqa: E402
from mpg_tui.sandbox.demo_world import DOCS, SEARCH, SHOP, build_demo, play_demo  # noqa: E402
from mpg_tui.sandbox.world import World  # noqa: E402
from mpg_tui.tui.app import CockpitApp, make_app  # noqa: E402

log = logging.getLogger("screenshots")
CHROMIUM = "/usr/bin/chromium"
# Textual's SVG asks for Fira Code from a CDN; offline, cairosvg falls back to a
# proportional face and columns drift. A local monospace face keeps them aligned.
PNG_FONT = "DejaVu Sans Mono"

Steps = Callable[[Pilot[Any], CockpitApp, FakeClock, World], Awaitable[None]]


@dataclass(frozen=True)
class Shot:
    name: str
    size: tuple[int, int]
    steps: Steps
    demo_chat: bool = False


async def settle(pilot: Pilot[Any], clock: FakeClock) -> None:
    await pilot.pause()
    clock.advance(1.0)
    await pilot.pause()


async def main_screen(pilot: Pilot[Any], app: CockpitApp, clock: FakeClock, world: World) -> None:
    app.main.select_session(f"{SEARCH}:engineer")


async def finished_turn(pilot: Pilot[Any], app: CockpitApp, clock: FakeClock, world: World) -> None:
    app.main.select_session(f"{SEARCH}:pm")


async def kill_confirmation(pilot: Pilot[Any], app: CockpitApp, clock: FakeClock, world: World) -> None:
    app.main.select_session(f"{SEARCH}:engineer")
    await pilot.pause()
    await pilot.press("k")


async def filtered(pilot: Pilot[Any], app: CockpitApp, clock: FakeClock, world: World) -> None:
    await pilot.press("slash", *"shop", "enter")
    app.main.event_log.set_level("warn")


async def approvals_inbox(pilot: Pilot[Any], app: CockpitApp, clock: FakeClock, world: World) -> None:
    """The demo engineer wants to run the tests: the header counts it, the detail says what it waits for."""
    key = f"{SEARCH}:engineer"
    requested = world.expect(lambda e: isinstance(e, ApprovalRequested) and e.key == key)
    world.live(key).ask("Bash", {"command": "python3 -m pytest -q tests/search"})
    await requested
    app.main.select_session(key)


SHOTS = [
    Shot("cockpit-main", (200, 50), main_screen),
    Shot("cockpit-detail", (200, 50), finished_turn),
    Shot("cockpit-kill-confirmation", (200, 50), kill_confirmation),
    Shot("cockpit-filter", (200, 50), filtered),
    Shot("cockpit-approvals", (200, 50), approvals_inbox),
    Shot("cockpit-narrow-demo", (120, 35), main_screen, demo_chat=True),
]


async def take(shot: Shot) -> str:
    clock = FakeClock()
    with tempfile.TemporaryDirectory(prefix="mpg-screenshots-") as state_dir:
        world = await build_demo(Path(state_dir), clock)
        channels = [(SHOP, "#shop-api"), (DOCS, "#docs-site")] if shot.demo_chat else None
        app = make_app(
            world.gateway,
            clock=clock,
            dashboard_url="http://127.0.0.1:3100",
            demo_channel_ids=channels,
            launcher=lambda argv, cwd: 0,  # nothing is ever launched from a screenshot
            environ={},
        )
        try:
            async with app.run_test(size=shot.size) as pilot:
                await app.ready.wait()
                await play_demo(world)
                await settle(pilot, clock)
                await shot.steps(pilot, app, clock, world)
                await settle(pilot, clock)
                return app.export_screenshot(title="mpg-tui")
        finally:
            await world.close()


def svg_size(svg: str) -> tuple[int, int]:
    match = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg)
    if not match:
        raise ValueError("the SVG has no viewBox")
    return int(float(match.group(1))), int(float(match.group(2)))


def png_with_cairosvg(svg: str, png: Path) -> None:
    cairosvg = importlib.import_module("cairosvg")  # optional: only this script uses it
    local = svg.replace("font-family: Fira Code, monospace;", f"font-family: {PNG_FONT};")
    cairosvg.svg2png(bytestring=local.encode(), write_to=str(png))


def png_with_chromium(svg_path: Path, png: Path) -> None:
    width, height = svg_size(svg_path.read_text(encoding="utf-8"))
    argv = [CHROMIUM, "--headless", "--disable-gpu", "--hide-scrollbars"]
    if os.geteuid() == 0:
        argv.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    with tempfile.TemporaryDirectory() as profile:
        argv += [
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            svg_path.resolve().as_uri(),
        ]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)


def pick_renderer(choice: str) -> str:
    if choice != "auto":
        return choice
    try:
        importlib.import_module("cairosvg")
    except ImportError:
        if shutil.which(CHROMIUM):
            return "chromium"
        log.warning("neither cairosvg nor %s is available: writing SVG only", CHROMIUM)
        return "none"
    return "cairosvg"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--png", choices=["auto", "cairosvg", "chromium", "none"], default="auto")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # The event log shows times of day: pin the zone so pictures match on every machine.
    os.environ["TZ"] = "UTC"
    time.tzset()

    renderer = pick_renderer(args.png)
    args.out.mkdir(parents=True, exist_ok=True)
    for shot in SHOTS:
        svg = asyncio.run(take(shot))
        svg_path = args.out / f"{shot.name}.svg"
        svg_path.write_text(svg, encoding="utf-8")
        png_path = svg_path.with_suffix(".png")
        if renderer == "cairosvg":
            png_with_cairosvg(svg, png_path)
        elif renderer == "chromium":
            png_with_chromium(svg_path, png_path)
        log.info(
            "%s%s",
            svg_path.relative_to(ROOT) if svg_path.is_relative_to(ROOT) else svg_path,
            f" + .png ({renderer})" if renderer != "none" else "",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
