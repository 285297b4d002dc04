"""The cockpit's ``j`` holds a session on a real gateway while the stand-in claude runs interactively.

The gateway runs in this process on the loopback sandbox with the stand-in claude; the
cockpit is the real app under Pilot. Its launcher runs the stand-in's interactive
``--resume`` for real, with the lines an operator would type, once the test lets it.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from mpg_tui.core.events import RunStarted, SessionHeld
from mpg_tui.sandbox.discord import SandboxServer
from mpg_tui.tui.app import CockpitApp
from mpg_tui.tui.screens.busy_screen import BusyScreen
from tests.e2e.gateway_process import WAIT_S
from tests.faults.conftest import in_process_gateway, profile_for, sandbox_spec
from tests.tui.conftest import installed

pytestmark = [pytest.mark.e2e]

CHANNELS = {"shop": {}}
SIZE = (200, 50)


class Terminal:
    """A launcher playing the operator's terminal: runs claude with typed lines once allowed."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = lines
        self.calls: list[tuple[list[str], str | None]] = []
        self.output = ""
        self.go = threading.Event()
        self.started = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def __call__(self, argv: Sequence[str], cwd: str | None) -> int:
        self.calls.append((list(argv), cwd))
        self._loop.call_soon_threadsafe(self.started.set)
        self.go.wait(WAIT_S)
        typed = "".join(f"{line}\n" for line in self.lines)
        done = subprocess.run(list(argv), cwd=cwd, input=typed, capture_output=True, text=True, timeout=WAIT_S)
        self.output = done.stdout
        return done.returncode


class HeadlessApp(CockpitApp):
    """The headless driver cannot lend its terminal out; everything else is the real app."""

    @contextmanager
    def suspend(self) -> Iterator[None]:
        yield


async def test_jump_holds_the_session_until_the_terminal_claude_exits_then_the_waiting_message_runs(
    tmp_path: Path,
) -> None:
    async with SandboxServer(sandbox_spec(CHANNELS)) as sandbox:
        profile = profile_for(sandbox, tmp_path, CHANNELS, {})
        async with in_process_gateway(sandbox, profile) as world:
            posted, thread_id = await world.ask("shop", "[[reply:first answer]] start")
            await world.chat.sent(thread_id, "first answer", posted.seq)
            gateway = world.runtime.gateway
            terminal = Terminal(["typed in the terminal", ""])
            shim = str(profile.root / "bin" / "claude")
            app = HeadlessApp(gateway, launcher=terminal, environ={}, which=installed, claude_command=(shim,))
            async with app.run_test(size=SIZE) as pilot:
                await app.ready.wait()
                assert app.main.select_session(thread_id)
                await pilot.press("j")
                async with asyncio.timeout(WAIT_S):
                    await terminal.started.wait()
                info = gateway.session(thread_id)
                assert info is not None and info.state == "held" and info.held_by is not None

                asked = await world.chat.post(thread_id, "[[reply:after the terminal]] next")
                await world.chat.sent_starting(thread_id, "🔒 This session is open in a terminal", asked.seq)
                assert not profile.agent_log.asked("after the terminal")

                terminal.go.set()
                await app.workers.wait_for_complete()
                back = await world.chat.sent_starting(thread_id, "🔓 Back from the terminal.", asked.seq)
                assert "1 turn taken there" in back.text
                await world.chat.sent(thread_id, "after the terminal", back.seq)

            ((argv, cwd),) = terminal.calls
            assert argv[-2] == "--resume" and argv[-1] == info.session_id and cwd == info.cwd
            assert "[claude] typed in the terminal" in terminal.output
            (run,) = profile.agent_log.asked("after the terminal")
            assert run.resumed == info.session_id


async def test_jumping_into_a_running_session_offers_to_stop_the_run(tmp_path: Path) -> None:
    async with SandboxServer(sandbox_spec(CHANNELS)) as sandbox:
        profile = profile_for(sandbox, tmp_path, CHANNELS, {})
        async with in_process_gateway(sandbox, profile) as world:
            posted, thread_id = await world.ask("shop", "[[reply:first answer]] start")
            await world.chat.sent(thread_id, "first answer", posted.seq)
            gateway = world.runtime.gateway
            started = asyncio.create_task(world.runtime.bus.wait_for(RunStarted, timeout=WAIT_S))
            await world.chat.post(thread_id, "[[sleep:60]] a long job")
            await started

            terminal = Terminal([""])
            terminal.go.set()
            app = HeadlessApp(gateway, launcher=terminal, environ={}, which=installed)
            async with app.run_test(size=SIZE) as pilot:
                await app.ready.wait()
                assert app.main.select_session(thread_id)
                await pilot.pause()
                held = asyncio.create_task(world.runtime.bus.wait_for(SessionHeld, timeout=WAIT_S))
                await pilot.press("j")
                assert isinstance(app.screen, BusyScreen)
                await pilot.press("s")
                await held  # the run was stopped, then the session lent out
                await app.workers.wait_for_complete()
            assert len(terminal.calls) == 1
            error = await world.error_in(thread_id, posted.seq)
            assert error.text == "**Error**: The run was cancelled."
