"""The two doors of the control API refuse who they must and survive what they are sent."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import aiohttp
import pytest

from mpg_tui.control import journal as control_journal
from mpg_tui.control.client import ControlClient, Endpoint
from mpg_tui.control.journal import EventJournal
from mpg_tui.control.protocol import API_PREFIX, MAX_REQUEST_BYTES, ControlError
from mpg_tui.control.server import ControlService
from mpg_tui.core.events import LogLine
from mpg_tui.dashboard.server import Dashboard
from tests.control.conftest import BOT_TOKEN, DASHBOARD_TOKEN, World


def http(dashboard: Dashboard, token: str | None = DASHBOARD_TOKEN) -> Endpoint:
    return Endpoint(url=dashboard.url.rstrip("/"), token=token)


async def test_the_socket_is_private_to_its_user(control: ControlService) -> None:
    assert control.socket_file is not None
    assert stat.S_IMODE(control.socket_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(control.socket_file.parent.stat().st_mode) == 0o700


async def test_the_socket_refuses_a_peer_of_another_user(world: World, run_dir: Path) -> None:
    # The peer is us; a service that answers only some other uid must refuse it.
    service = ControlService(
        world.gateway, EventJournal(world.gateway), socket_file=run_dir / "other.sock", allowed_uid=os.getuid() + 1
    )
    await service.start()
    try:
        async with ControlClient(Endpoint(url=f"unix:{run_dir / 'other.sock'}")) as client:
            with pytest.raises(ControlError) as refused:
                await client.snapshot()
    finally:
        await service.stop()
    assert refused.value.status == 403 and refused.value.code == "forbidden"


@pytest.mark.parametrize("token", [None, "not-the-token-at-all-0000", DASHBOARD_TOKEN + "x"])
async def test_a_wrong_or_missing_token_gets_401_on_every_control_route(
    dashboard: Dashboard, token: str | None
) -> None:
    async with ControlClient(http(dashboard, token)) as client:
        for attempt in (client.snapshot(), client.command("kill", key="1")):
            with pytest.raises(ControlError) as refused:
                await attempt
            assert refused.value.status == 401
        with pytest.raises(ControlError) as refused:
            async with client.events():
                pass
        assert refused.value.status == 401


async def test_the_http_door_serves_the_same_snapshot_and_commands_with_the_token(
    world: World, dashboard: Dashboard
) -> None:
    thread = await world.open_thread("hello")
    async with ControlClient(http(dashboard)) as client:
        snapshot = await client.snapshot()
        assert [s["key"] for s in snapshot["sessions"]] == [thread]
        assert DASHBOARD_TOKEN not in str(snapshot)
        assert await client.command("restart", key=thread) is True


async def test_commands_from_a_web_page_are_refused(dashboard: Dashboard) -> None:
    url = f"{dashboard.url.rstrip('/')}{API_PREFIX}/commands/kill"
    auth = {"Authorization": f"Bearer {DASHBOARD_TOKEN}"}
    async with aiohttp.ClientSession() as session:
        # A form or text/plain post needs no preflight in a browser: refused for its type.
        async with session.post(url, data='{"args":{"key":"1"}}', headers={**auth, "Content-Type": "text/plain"}) as r:
            assert r.status == 415
        async with session.post(
            url, json={"args": {"key": "1"}}, headers={**auth, "Origin": "https://evil.example"}
        ) as r:
            assert r.status == 403
            assert (await r.json())["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "bad_request"),
        (b"\xff\xfe", 400, "bad_request"),
        (b"[1, 2]", 400, "bad_request"),
        (b'{"args": "key"}', 400, "bad_request"),
        (b'{"args": {}}', 400, "bad_request"),
        (b'{"args": {"key": 5}}', 400, "bad_request"),
        (b'{"args": {"key": "1", "force": "yes"}}', 400, "bad_request"),
        (b'{"v": 99, "args": {"key": "1"}}', 400, "bad_request"),
        (b'{"args": {"key": "' + b"9" * (MAX_REQUEST_BYTES + 10) + b'"}}', 413, "too_large"),
    ],
)
async def test_malformed_commands_get_an_error_and_the_socket_keeps_serving(
    local: Endpoint, body: bytes, status: int, code: str
) -> None:
    async with ControlClient(local) as client:
        async with client.session.post(
            f"http://localhost{API_PREFIX}/commands/kill", data=body, headers={"Content-Type": "application/json"}
        ) as response:
            assert response.status == status
            assert (await response.json())["error"]["code"] == code
        assert (await client.snapshot())["v"] == 1


async def test_unknown_commands_routes_and_cursors_are_errors(local: Endpoint) -> None:
    async with ControlClient(local) as client:
        with pytest.raises(ControlError) as unknown:
            await client.command("format_disk", key="1")
        assert unknown.value.status == 404 and unknown.value.code == "unknown_command"
        async with client.session.get(f"http://localhost{API_PREFIX}/nothing/here") as response:
            assert response.status == 404
        async with client.session.get(f"http://localhost{API_PREFIX}/events?since=abc") as response:
            assert response.status == 400


async def test_a_stream_resumes_after_its_cursor_or_asks_for_a_resync_when_the_ring_forgot_it(
    world: World, run_dir: Path
) -> None:
    journal = EventJournal(world.gateway, size=4)
    service = ControlService(world.gateway, journal, socket_file=run_dir / "small.sock")
    await service.start()
    endpoint = Endpoint(url=f"unix:{run_dir / 'small.sock'}")
    try:
        async with ControlClient(endpoint) as client:
            instance = (await client.snapshot())["instance"]
            for n in range(3):
                world.bus.publish(LogLine(level="info", logger="test", message=f"line {n}"))
            journal.flush()

            async def read(since: int, count: int) -> list[dict[str, object]]:
                async with client.events(since, instance) as lines:
                    got = []
                    async for line in lines:
                        got.append(line)
                        if len(got) == count:
                            return got
                return got

            hello, *missed = await read(1, 3)
            assert hello["type"] == "hello" and [m["seq"] for m in missed] == [2, 3]
            for n in range(5):
                world.bus.publish(LogLine(level="info", logger="test", message=f"more {n}"))
            journal.flush()
            assert [m["type"] for m in await read(1, 2)] == ["hello", "resync"]
            assert [m["type"] for m in await read(8, 1)] == ["hello"]
            assert [m["type"] for m in await read(3, 2)] == ["hello", "resync"]
            # A cursor of another life of the gateway is never trusted.
            async with client.events(8, "someone-else") as lines:
                kinds = [line["type"] async for line in lines]
            assert kinds == ["hello", "resync"]
    finally:
        await asyncio.wait_for(service.stop(), 10)


async def test_the_journal_serializes_events_itself_a_slice_at_a_time_when_no_stream_reads_them(world: World) -> None:
    journal = EventJournal(world.gateway, redact=(BOT_TOKEN,))
    journal.attach()
    try:
        for n in range(40):
            world.bus.publish(LogLine(level="info", logger="test", message=f"line {n} {BOT_TOKEN}"))
        journal.flush()
        assert journal.unencoded == 40  # nothing serialized on the way of the events themselves
        assert journal.encode_pending(16) and journal.unencoded == 24
        entries = journal.after(0)
        assert entries is not None
        lines = [json.loads(entry.line) for entry in entries]  # a stream asks: serialized now
        assert journal.unencoded == 0 and not journal.encode_pending(16)
        assert [line["seq"] for line in lines] == list(range(1, 41))
        assert lines[39]["event"]["message"] == "line 39 [redacted]"
    finally:
        journal.detach()


async def test_the_journal_copies_state_at_once_for_a_waiting_stream_and_in_a_batch_when_nobody_waits(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control_journal, "FLUSH_UNWATCHED_S", 3600)  # never, within this test
    journal = EventJournal(world.gateway)
    journal.attach()
    try:
        world.bus.publish(LogLine(level="info", logger="test", message="unwatched"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert journal.seq == 0  # nobody waits: nothing done for it on the loop's next passes
        await asyncio.wait_for(journal.wait_newer(0), 10)  # a stream that starts waiting gets it at once
        assert journal.seq == 1

        waiting = asyncio.create_task(journal.wait_newer(1))
        await asyncio.sleep(0)
        world.bus.publish(LogLine(level="info", logger="test", message="watched"))
        await asyncio.wait_for(waiting, 10)  # on the next pass, not after FLUSH_UNWATCHED_S
        assert journal.seq == 2
    finally:
        journal.detach()
