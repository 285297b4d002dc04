"""``/api/events``: bus events as server-sent events, heartbeats, bounded queues, clean disconnects."""

from __future__ import annotations

import aiohttp

from mpg_tui.core.clock import FakeClock
from mpg_tui.core.gateway import Gateway
from mpg_tui.dashboard import Dashboard
from mpg_tui.sandbox.world import World
from tests.dashboard.conftest import API, next_event, next_frame


async def open_stream(client: aiohttp.ClientSession, dashboard: Dashboard) -> aiohttp.ClientResponse:
    response = await client.get(dashboard.url + "api/events")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    hello = await next_frame(response)  # sent once the bus subscription exists
    assert hello.retry == 3000
    assert hello.comments == ["connected"]
    return response


async def test_a_published_event_arrives_as_its_kind_and_to_dict(
    world: World, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    response = await open_stream(client, dashboard)

    await world.ask(API, "ship <it>\nnow", message_id="1300000000000000001")

    frame = await next_event(response)
    assert frame.event == "message_received"
    assert frame.json()["content"] == "ship <it>\nnow"
    while frame.event != "run_started":
        frame = await next_event(response)
    payload = frame.json()
    assert payload["kind"] == "run_started"
    assert payload["key"] == "1300000000000000001"
    assert payload["prompt_preview"] == "ship <it> now"  # previews are one line
    response.close()


async def test_each_client_gets_every_event_in_order(
    world: World, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    first = await open_stream(client, dashboard)
    second = await open_stream(client, dashboard)

    for i in range(3):
        world.connect("ready", f"line {i}")

    for response in (first, second):
        messages = [(await next_event(response)).json()["detail"] for _ in range(3)]
        assert messages == ["line 0", "line 1", "line 2"]
        response.close()


async def test_idle_streams_get_a_heartbeat_comment_when_the_interval_passes(
    clock: FakeClock, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    response = await open_stream(client, dashboard)

    clock.advance(15)

    frame = await next_frame(response)
    assert frame.event is None
    assert frame.comments == ["heartbeat"]
    response.close()


async def test_a_client_that_leaves_gives_its_bus_subscription_back(
    core: Gateway, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    response = await open_stream(client, dashboard)
    assert dashboard.streams.client_count == 1

    response.close()
    await dashboard.streams.wait_for_clients(0)

    assert dashboard.streams.client_count == 0
    assert core.bus._subscriptions == []


async def test_a_slow_client_loses_old_events_instead_of_blocking_the_publisher(
    world: World, clock: FakeClock, client: aiohttp.ClientSession
) -> None:
    async with Dashboard(world.gateway, port=0, clock=clock, stream_queue_size=8) as dashboard:
        response = await open_stream(client, dashboard)

        # Published in one go, without yielding: the stream cannot drain in between.
        for i in range(100):
            world.connect("ready", f"line {i}")

        dropped = await next_event(response)
        assert dropped.event == "dropped"
        assert dropped.json() == {"dropped": 92}
        received = [(await next_event(response)).json()["detail"] for _ in range(8)]
        assert received == [f"line {i}" for i in range(92, 100)]
        assert "mpg_dashboard_events_dropped_total 92" in dashboard.metrics.render().splitlines()
        response.close()


async def test_stopping_the_dashboard_ends_open_streams(
    core: Gateway, clock: FakeClock, client: aiohttp.ClientSession
) -> None:
    listeners = list(core.bus._listeners)  # the gateway's own
    dashboard = Dashboard(core, port=0, clock=clock)
    await dashboard.start()
    response = await open_stream(client, dashboard)

    await dashboard.stop()

    assert await response.content.read() == b""
    assert core.bus._subscriptions == []
    assert core.bus._listeners == listeners
