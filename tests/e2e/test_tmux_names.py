"""A real tmux-backed run names its tmux session everywhere an operator looks for it.

The real :class:`~mpg_tui.runners.tmux.TmuxRunner` (no fake) runs the stand-in claude in
tmux; while it works, ``!session`` in the thread, ``/api/sessions`` on the dashboard and
the cockpit's detail pane show its tmux session, and the cockpit's ``a`` runs the
gateway's attach command for it.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from mpg_tui.demo import free_port
from mpg_tui.runners.names import session_name
from mpg_tui.sandbox.discord import SandboxServer
from mpg_tui.tui.app import CockpitApp
from tests.faults.conftest import in_process_gateway, profile_for, sandbox_spec
from tests.tui.conftest import Launches, installed, plain

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

CHANNELS = {"infra": {}}


@pytest.fixture
def socket_name() -> Iterator[str]:
    name = f"mpg-test-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True, check=False)


async def test_a_running_tmux_session_is_named_in_chat_on_the_dashboard_and_in_the_cockpit(
    tmp_path: Path, socket_name: str
) -> None:
    port = free_port()
    async with SandboxServer(sandbox_spec(CHANNELS)) as sandbox:
        defaults = {"persistence": "tmux", "tmuxSocket": socket_name, "httpPort": port}
        profile = profile_for(sandbox, tmp_path, CHANNELS, defaults)
        async with in_process_gateway(sandbox, profile) as world:
            posted, thread_id = await world.ask("infra", "[[sleep:60]] [[reply:never seen]] a long job")
            await world.chat.sent_starting(thread_id, "⚙️ Claude is working", posted.seq)
            name = session_name(thread_id)
            tmux = shutil.which("tmux")
            assert tmux is not None
            attach = [tmux, "-L", socket_name, "attach", "-t", name]

            asked = await world.chat.post(thread_id, "!session")
            reply = await world.chat.sent_starting(thread_id, "", asked.seq)
            assert f"tmux: `{name}`" in reply.text

            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/api/sessions") as response,
            ):
                sessions = await response.json()
            (listed,) = [s for s in sessions if s["key"] == thread_id]
            assert listed["tmuxSession"] == name
            assert listed["attachCommand"] == attach

            launches = Launches()
            app = CockpitApp(world.runtime.gateway, launcher=launches, environ={"TMUX": "x"}, which=installed)
            async with app.run_test(size=(200, 50)) as pilot:
                await app.ready.wait()
                assert app.main.select_session(thread_id)
                await pilot.pause()
                assert name in plain(app.main.query_one("#detail-head").content)  # type: ignore[attr-defined]
                await pilot.press("a")
                await app.workers.wait_for_complete()
                ((argv, cwd),) = launches.calls  # inside tmux: a new window runs the attach command
                assert argv[:2] == ["tmux", "new-window"] and argv[-len(attach) :] == attach and cwd is None

            assert await world.runtime.gateway.kill(thread_id)
