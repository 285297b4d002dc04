"""What waits for the operator on the page: pending requests with their buttons, threads paused
at a spending limit with a Continue, today's spend against each budget, and the journal's counts."""

from __future__ import annotations

import copy

import aiohttp

from mpg_tui.core.events import ApprovalRequested, BudgetPaused
from mpg_tui.dashboard import Dashboard
from mpg_tui.sandbox.world import World
from tests.dashboard.conftest import API, DEFAULT_CONFIG, WEB, MakeWorld

THREAD = "1300000000000000077"


async def fetch_page(client: aiohttp.ClientSession, dashboard: Dashboard) -> str:
    async with client.get(dashboard.url) as response:
        assert response.status == 200
        return await response.text()


async def test_a_pending_request_is_listed_with_its_summary_requester_countdown_and_buttons(
    world: World, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    page = await fetch_page(client, dashboard)
    assert '<span class="count" id="approvals-count">0</span>' in page
    assert "Nothing waits for a decision." in page

    key = await world.ask(WEB, "@engineer run the tests", message_id=THREAD, author="ana", roles=("dev",))
    assert key is not None
    requested = world.expect(lambda e: isinstance(e, ApprovalRequested))
    world.live(key).ask("Bash", {"command": "rm -rf build && echo '<done>'"})
    await requested

    page = await fetch_page(client, dashboard)
    assert '<span class="count" id="approvals-count">1</span>' in page
    assert '<span class="badge kind-tool">Bash</span><span class="primary">web-app</span>' in page
    assert f"{key}</a> · asked for by ana" in page
    assert "rm -rf build &amp;&amp; echo &#x27;&lt;done&gt;&#x27;</pre>" in page  # escaped, never markup
    assert "denied in <time" in page and "10m</time> unless decided" in page
    labels = [label for label in ("Allow once", "Allow for this session", "Deny") if f">{label}</button>" in page]
    assert labels == ["Allow once", "Allow for this session", "Deny"]


async def test_a_question_offers_its_options_and_a_decline(
    world: World, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    key = await world.ask(WEB, "@pm which database?", message_id=THREAD, author="ana", roles=("dev",))
    assert key is not None
    requested = world.expect(lambda e: isinstance(e, ApprovalRequested))
    question = {
        "questions": [
            {
                "question": "Which database?",
                "header": "DB",
                "multiSelect": False,
                "options": [{"label": "Postgres", "description": ""}, {"label": "SQLite", "description": ""}],
            }
        ]
    }
    world.live(key).ask("AskUserQuestion", question)
    await requested

    page = await fetch_page(client, dashboard)
    assert 'data-choice="option:0">Postgres</button>' in page
    assert 'data-choice="option:1">SQLite</button>' in page
    assert 'data-choice="deny">Decline</button>' in page
    assert "declined in <time" in page  # what the timeout does to a question


async def test_a_paused_thread_shows_its_limit_and_continues_from_the_page(
    make_world: MakeWorld, client: aiohttp.ClientSession
) -> None:
    config = copy.deepcopy(DEFAULT_CONFIG)
    config["projects"][API] |= {"maxThreadCostUsd": 1.0, "dailyBudgetUsd": 5.0}
    world = make_world(config)
    async with Dashboard(world.gateway, port=0, clock=world.clock) as dashboard:
        assert await world.ask(API, "spend it", message_id=THREAD) == THREAD
        paused = world.expect(lambda e: isinstance(e, BudgetPaused))
        await world.finish(THREAD, cost_usd=1.25)
        await paused

        page = await fetch_page(client, dashboard)
        assert (
            '<div class="detail paused">paused at its thread limit: $1.25 of $1.00 · 0 messages kept '
            f'<button type="button" class="continue" data-continue="{THREAD}">Continue</button></div>'
        ) in page
        assert '<span class="tag" data-spend>today $1.25 of $5.00</span>' in page
        assert 'data-card="Messages"><div class="card-label">Messages</div><div class="card-value">1</div>' in page

        url = f"{dashboard.url}api/threads/{THREAD}/continue"
        async with client.post(url, data="{}") as response:
            assert response.status == 415  # a form post from a page elsewhere is not a command
        async with client.post(url, json={"amountUsd": -1}) as response:
            assert response.status == 400
        async with client.post(url, json={}) as response:
            answer = await response.json()
        assert response.status == 200 and answer["continued"] is True
        assert "Continued by the operator" in answer["text"]
        assert world.gateway.budgets().paused == []
        async with client.post(url, json={}) as response:
            assert (await response.json())["continued"] is False


async def test_a_request_and_its_decision_are_part_of_the_threads_conversation(
    world: World, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    key = await world.ask(WEB, "@engineer run the tests", message_id=THREAD, author="ana", roles=("dev",))
    assert key is not None
    requested = world.expect(lambda e: isinstance(e, ApprovalRequested))
    asking = world.live(key).ask("Bash", {"command": "python3 -m pytest"})
    pending = await requested
    assert isinstance(pending, ApprovalRequested)
    await world.gateway.decide(pending.id, "deny")
    await asking

    async with client.get(f"{dashboard.url}api/threads/{THREAD}/conversation") as response:
        entries = (await response.json())["entries"]
    assert [(e["kind"], e["text"]) for e in entries[-2:]] == [
        ("notice", "🔐 @engineer asks to use Bash: python3 -m pytest"),
        ("notice", "❌ Bash: denied by the operator"),
    ]
