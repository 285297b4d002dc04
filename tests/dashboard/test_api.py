"""The JSON API: every endpoint's shape, MPG-compatible names, and values taken from the real core."""

from __future__ import annotations

import aiohttp

from mpg_tui import __version__
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.gateway import Gateway
from mpg_tui.core.ports import InboundMessage
from mpg_tui.dashboard import Dashboard
from mpg_tui.runners.names import session_name
from mpg_tui.sandbox.world import World
from tests.dashboard.conftest import API, DEFAULT_CONFIG, UPTIME_S, WEB, MakeWorld, get_json

THREAD = "1300000000000000001"
OTHER = "1300000000000000002"


async def test_health_reports_uptime_counts_and_discord_state_like_mpg(
    make_world: MakeWorld, clock: FakeClock, client: aiohttp.ClientSession
) -> None:
    one_at_a_time = {**DEFAULT_CONFIG, "defaults": {**DEFAULT_CONFIG["defaults"], "maxConcurrentSessions": 1}}
    world = make_world(one_at_a_time)
    clock.advance(UPTIME_S)
    async with Dashboard(world.gateway, port=0, clock=clock) as dashboard:
        await world.ask(WEB, "@pm plan coupons", message_id=THREAD)  # running
        await world.ask(THREAD, "@pm and gift cards")  # queued behind it
        await world.ask(THREAD, "@pm and refunds")  # and behind that
        await world.ask(API, "rotate the keys", message_id=OTHER)  # waits for the one run slot
        world.connect("resuming", "gateway asked to reconnect")
        clock.advance(30)

        health = await get_json(client, dashboard, "/health")

    assert health == {
        "status": "ok",
        "uptime": 120,
        "sessions": {"active": 2, "queued": 3, "running": 1},
        "discord": "reconnecting",
        "connection": "resuming",
    }


async def test_sessions_lists_every_session_with_details_newest_first(
    world: World, clock: FakeClock, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    pm = await world.ask(WEB, "@pm plan coupons", message_id=THREAD)
    assert pm == f"{THREAD}:pm"
    await world.finish(pm, "done", cost_usd=0.25, input_tokens=1000, output_tokens=200, session_id="abc-123")
    clock.advance(5)
    assert await world.ask(API, "rotate the keys", message_id=OTHER) == OTHER

    sessions = await get_json(client, dashboard, "/api/sessions")

    assert [s["key"] for s in sessions] == [OTHER, pm]
    newest, older = sessions
    assert newest["state"] == "running"
    assert newest["processing"] is True
    assert newest["runner"] == "tmux"
    assert newest["tmuxSession"] == session_name(OTHER)
    assert newest["projectName"] == "api"
    assert newest["runStartedAt"] == "2023-11-14T22:14:55.000Z"
    assert older == {
        "projectKey": pm,
        "key": pm,
        "sessionId": "abc-123",
        "projectChannelId": WEB,
        "projectName": "web-app",
        "threadId": THREAD,
        "agent": "pm",
        "cwd": "/srv/projects/web-app",
        "worktreePath": None,
        "state": "idle",
        "processing": False,
        "queueLength": 0,
        "runner": "direct",
        "tmuxSession": None,
        "attachCommand": None,
        "threadName": "@pm plan coupons",
        "lastActivity": round((clock.now() - 5) * 1000),
        "lastActivityAt": "2023-11-14T22:14:50.000Z",
        "runStartedAt": None,
        "runs": 1,
        "costUsd": 0.25,
        "inputTokens": 1000,
        "outputTokens": 200,
        "heldSince": None,
        "heldBy": None,
        "lastReply": "done",
        "lastError": None,
        "progress": [],
    }


async def test_long_replies_and_progress_are_trimmed_in_session_details(
    world: World, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    key = await world.ask(API, "rotate the keys", message_id=THREAD)
    assert key is not None
    for i in range(12):
        world.progress(key, f"step {i}")
    await world.finish(key, "x" * 5000)

    (session,) = await get_json(client, dashboard, "/api/sessions")

    assert len(session["lastReply"]) == 280
    assert session["lastReply"].endswith("…")
    assert session["progress"] == [f"step {i}" for i in range(7, 12)]


async def test_projects_list_agents_roles_limits_and_persistence(
    dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    projects = await get_json(client, dashboard, "/api/projects")

    assert projects == [
        {
            "channelId": "111111111111111111",
            "name": "web-app",
            "directory": "/srv/projects/web-app",
            "agents": ["pm", "engineer"],
            "agentDetails": [
                {"name": "pm", "role": "Product Manager"},
                {"name": "engineer", "role": "Software Engineer"},
            ],
            "allowedRoles": ["dev"],
            "rateLimitPerUser": 10,
            "persistence": "direct",
            "worktrees": True,
        },
        {
            "channelId": "222222222222222222",
            "name": "api",
            "directory": "/srv/projects/api",
            "agents": [],
            "agentDetails": [],
            "allowedRoles": [],
            "rateLimitPerUser": None,
            "persistence": "tmux",
            "worktrees": True,
        },
    ]


async def test_chains_show_each_hop_with_state_duration_and_cost(
    world: World, clock: FakeClock, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    pm = await world.ask(WEB, "@pm plan coupons", message_id=THREAD)
    assert pm is not None
    clock.advance(12)
    await world.finish(pm, "Planned.\nHANDOFF @engineer: build coupons", cost_usd=0.02)

    (chain,) = await get_json(client, dashboard, "/api/chains")

    assert chain["threadId"] == THREAD
    assert chain["projectName"] == "web-app"
    assert chain["state"] == "running"
    assert (chain["turns"], chain["maxTurns"]) == (1, 5)  # one handoff taken of five
    assert chain["costUsd"] == 0.02
    assert chain["durationMs"] == 12_000
    assert [(h["agent"], h["state"], h["durationMs"], h["costUsd"]) for h in chain["hops"]] == [
        ("pm", "done", 12_000, 0.02),
        ("engineer", "running", 0, 0),
    ]
    assert chain["hops"][1]["startedAt"] == "2023-11-14T22:15:02.000Z"


async def test_status_combines_version_health_sessions_projects_chains_and_totals(
    world: World, clock: FakeClock, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    key = await world.ask(API, "rotate the keys", message_id=THREAD)
    assert key is not None
    await world.fail(key, "boom", cost_usd=0.5, input_tokens=10, output_tokens=20)

    status = await get_json(client, dashboard, "/api/status")

    assert status["version"] == __version__
    assert status["serverTime"] == clock.now()
    assert status["health"]["status"] == "ok"
    assert status["health"]["uptime"] == UPTIME_S
    assert [s["key"] for s in status["sessions"]] == [THREAD]
    assert [p["name"] for p in status["projects"]] == ["web-app", "api"]
    assert [(c["threadId"], c["state"]) for c in status["chains"]] == [(THREAD, "error")]
    assert status["totals"] == {"runs": 1, "failures": 1, "costUsd": 0.5, "inputTokens": 10, "outputTokens": 20}
    kinds = [e["kind"] for e in status["events"]]
    assert kinds[:4] == ["handoff_stopped", "notice_sent", "run_finished", "run_started"]  # the error was posted


async def test_unknown_paths_and_methods_are_refused(dashboard: Dashboard, client: aiohttp.ClientSession) -> None:
    async with client.get(dashboard.url + "api/nope") as response:
        assert response.status == 404
    async with client.post(dashboard.url + "api/status") as response:
        assert response.status == 405


async def test_url_reports_the_port_actually_bound_when_asked_for_port_zero(dashboard: Dashboard) -> None:
    assert dashboard.port == 0
    assert dashboard.url.startswith("http://127.0.0.1:")
    assert not dashboard.url.endswith(":0/")


async def test_messages_lists_the_journals_newest_entries_and_per_thread_counts(
    core: Gateway, clock: FakeClock, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    thread = "1390000000000000001"  # a thread of its own: the world's traffic has others
    for mid in ("1300000000000000005", "1300000000000000006"):
        core.journal.claim(
            InboundMessage(id=mid, channel_id=thread, author_id="7", author_name="ann", content=f"ask {mid}"), "p"
        )
        clock.advance(1)
    core.journal.mark("1300000000000000005", "answered", thread_id=thread)
    core.journal.mark("1300000000000000006", "running", thread_id=thread)

    document = await get_json(client, dashboard, "/api/messages?limit=10")

    assert document["threads"][thread] == {"waiting": 0, "running": 1, "answered": 1, "told": 0}
    assert [(m["messageId"], m["state"]) for m in document["messages"] if m["threadId"] == thread] == [
        ("1300000000000000006", "running"),
        ("1300000000000000005", "answered"),
    ]
    newest = next(m for m in document["messages"] if m["threadId"] == thread)
    assert newest["preview"] == "ask 1300000000000000006"
