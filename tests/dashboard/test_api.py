"""The JSON API: every endpoint's shape, MPG-compatible names, and values taken from the core."""

from __future__ import annotations

import aiohttp

from mpg_tui.core.clock import FakeClock
from mpg_tui.dashboard import Dashboard
from tests.dashboard.conftest import get_json
from tests.dashboard.fake_core import FakeCore

THREAD = "1300000000000000001"


async def test_health_reports_uptime_counts_and_discord_state_like_mpg(
    core: FakeCore, clock: FakeClock, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    core.start_run(f"{THREAD}:pm", agent="pm", queue_depth=2)
    core.start_run("1300000000000000002", queue_depth=1)
    core.finish_run("1300000000000000002")
    core.set_connection("resuming", "gateway asked to reconnect")
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
    core: FakeCore, clock: FakeClock, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    core.start_run(f"{THREAD}:pm", agent="pm")
    core.finish_run(f"{THREAD}:pm", cost_usd=0.25, input_tokens=1000, output_tokens=200, session_id="abc-123")
    clock.advance(5)
    core.start_run("1300000000000000002", project=1, runner="tmux")

    sessions = await get_json(client, dashboard, "/api/sessions")

    assert [s["key"] for s in sessions] == ["1300000000000000002", f"{THREAD}:pm"]
    newest, older = sessions
    assert newest["state"] == "running"
    assert newest["processing"] is True
    assert newest["runner"] == "tmux"
    assert newest["tmuxSession"] == "mpg-1300000000000000002"
    assert newest["projectName"] == "api"
    assert older == {
        "projectKey": f"{THREAD}:pm",
        "key": f"{THREAD}:pm",
        "sessionId": "abc-123",
        "projectChannelId": core.project_key(0),
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
        "lastActivity": round((clock.now() - 5) * 1000),
        "lastActivityAt": "2023-11-14T22:13:20.000Z",
        "runStartedAt": "2023-11-14T22:13:20.000Z",
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
    core: FakeCore, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    info = core.start_run(THREAD)
    info.progress.extend(f"step {i}" for i in range(12))
    core.finish_run(THREAD, reply="x" * 5000)

    (session,) = await get_json(client, dashboard, "/api/sessions")

    assert len(session["lastReply"]) == 280
    assert session["lastReply"].endswith("…")
    assert session["progress"] == [f"step {i}" for i in range(7, 12)]


async def test_projects_list_agents_roles_limits_and_persistence(
    core: FakeCore, dashboard: Dashboard, client: aiohttp.ClientSession
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
    core: FakeCore, clock: FakeClock, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    core.handoff(THREAD, "pm")
    clock.advance(12)
    core.finish_hop(THREAD, duration_ms=12_000, cost_usd=0.02)
    core.handoff(THREAD, "engineer", from_agent="pm")

    (chain,) = await get_json(client, dashboard, "/api/chains")

    assert chain["threadId"] == THREAD
    assert chain["projectName"] == "web-app"
    assert chain["state"] == "running"
    assert (chain["turns"], chain["maxTurns"]) == (2, 5)
    assert chain["costUsd"] == 0.02
    assert chain["durationMs"] == 12_000
    assert [(h["agent"], h["state"], h["durationMs"], h["costUsd"]) for h in chain["hops"]] == [
        ("pm", "done", 12_000, 0.02),
        ("engineer", "running", 0, 0),
    ]
    assert chain["hops"][1]["startedAt"] == "2023-11-14T22:13:32.000Z"


async def test_status_combines_version_health_sessions_projects_chains_and_totals(
    core: FakeCore, clock: FakeClock, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    core.start_run(THREAD)
    core.finish_run(THREAD, ok=False, error="boom", cost_usd=0.5, input_tokens=10, output_tokens=20)
    core.handoff(THREAD, "pm")

    status = await get_json(client, dashboard, "/api/status")

    assert status["version"] == "0.1.0-test"
    assert status["serverTime"] == clock.now()
    assert status["health"]["status"] == "ok"
    assert status["health"]["uptime"] == 90
    assert [s["key"] for s in status["sessions"]] == [THREAD]
    assert [p["name"] for p in status["projects"]] == ["web-app", "api"]
    assert [c["threadId"] for c in status["chains"]] == [THREAD]
    assert status["totals"] == {"runs": 1, "failures": 1, "costUsd": 0.5, "inputTokens": 10, "outputTokens": 20}
    assert [e["kind"] for e in status["events"]] == ["handoff_step", "run_finished", "run_started"]


async def test_unknown_paths_and_methods_are_refused(dashboard: Dashboard, client: aiohttp.ClientSession) -> None:
    async with client.get(dashboard.url + "api/nope") as response:
        assert response.status == 404
    async with client.post(dashboard.url + "api/status") as response:
        assert response.status == 405


async def test_url_reports_the_port_actually_bound_when_asked_for_port_zero(dashboard: Dashboard) -> None:
    assert dashboard.port == 0
    assert dashboard.url.startswith("http://127.0.0.1:")
    assert not dashboard.url.endswith(":0/")
