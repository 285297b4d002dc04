"""``/metrics``: valid Prometheus text exposition, counters from bus events, gauges from the core."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import aiohttp
import pytest

from mpg_tui import __version__
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.events import BudgetPaused
from mpg_tui.dashboard import Dashboard
from mpg_tui.dashboard.metrics import Metrics, escape_label, format_value
from mpg_tui.sandbox.world import World
from tests.dashboard.conftest import API, DEFAULT_CONFIG, WEB, MakeWorld

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({METRIC_NAME})(\{{{LABEL}(?:,{LABEL})*\}})? (\S+)$")
HELP = re.compile(rf"^# HELP ({METRIC_NAME}) .*$")
TYPE = re.compile(rf"^# TYPE ({METRIC_NAME}) (counter|gauge|histogram|summary|untyped)$")
SUFFIXES = ("_bucket", "_sum", "_count")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_exposition(text: str) -> Samples:
    """Check every line against the text format and return the samples; fails on any bad line."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    samples: Samples = {}
    for number, line in enumerate(text.splitlines(), 1):
        if match := TYPE.match(line):
            assert match[1] not in types, f"line {number}: second TYPE for {match[1]}"
            types[match[1]] = match[2]
            continue
        if HELP.match(line):
            continue
        match = SAMPLE.match(line)
        assert match, f"line {number} is not valid exposition format: {line!r}"
        name, labels, value = match[1], match[2] or "", match[3]
        family = next((name.removesuffix(s) for s in SUFFIXES if name.removesuffix(s) in types), name)
        assert family in types, f"line {number}: sample {name} before its TYPE line"
        if types[family] == "counter":
            assert name.endswith("_total"), f"line {number}: counter without _total"
        parsed = float(value)  # raises on anything that is not a Prometheus number
        assert not math.isnan(parsed)
        pairs = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels))
        key = (name, pairs)
        assert key not in samples, f"line {number}: duplicate series {line!r}"
        samples[key] = parsed
    return samples


def sample(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples[(metric, frozenset(labels.items()))]


async def scrape(client: aiohttp.ClientSession, dashboard: Dashboard) -> Samples:
    async with client.get(dashboard.url + "metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return parse_exposition(await response.text())


async def test_every_line_is_valid_exposition_format_even_when_empty(
    dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    samples = await scrape(client, dashboard)

    assert sample(samples, "mpg_uptime_seconds") == 90
    assert sample(samples, "mpg_build_info", version=__version__) == 1
    assert sample(samples, "mpg_dashboard_events_dropped_total") == 0


async def test_runs_are_counted_by_project_with_failures_costs_tokens_and_durations(
    world: World, clock: FakeClock, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    for n, (ok, seconds) in enumerate(((True, 0.5), (True, 20), (False, 400))):
        key = await world.ask(WEB, f"@pm plan part {n}")
        assert key is not None
        clock.advance(seconds)
        if ok:
            await world.finish(key, cost_usd=0.25, input_tokens=100, output_tokens=10)
        else:
            await world.fail(key, "overloaded", cost_usd=0.25, input_tokens=100, output_tokens=10)
    await world.ask(API, "rotate the keys")

    samples = await scrape(client, dashboard)

    assert sample(samples, "mpg_runs_started_total", project=WEB) == 3
    assert sample(samples, "mpg_runs_started_total", project=API) == 1
    assert sample(samples, "mpg_runs_finished_total", project=WEB) == 3
    assert sample(samples, "mpg_runs_failed_total", project=WEB) == 1
    assert sample(samples, "mpg_cost_usd_total", project=WEB) == 0.75
    assert sample(samples, "mpg_tokens_total", project=WEB, direction="input") == 300
    assert sample(samples, "mpg_tokens_total", project=WEB, direction="output") == 30
    assert sample(samples, "mpg_run_duration_seconds_count", project=WEB) == 3
    assert sample(samples, "mpg_run_duration_seconds_sum", project=WEB) == 420.5
    assert sample(samples, "mpg_run_duration_seconds_bucket", project=WEB, le="1") == 1
    assert sample(samples, "mpg_run_duration_seconds_bucket", project=WEB, le="30") == 2
    assert sample(samples, "mpg_run_duration_seconds_bucket", project=WEB, le="300") == 2
    assert sample(samples, "mpg_run_duration_seconds_bucket", project=WEB, le="600") == 3
    assert sample(samples, "mpg_run_duration_seconds_bucket", project=WEB, le="+Inf") == 3


async def test_gauges_follow_the_cores_current_sessions_queues_and_connection(
    world: World, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    busy = await world.ask(WEB, "@pm plan coupons", message_id="1")
    await world.ask("1", "@pm and gift cards")  # both wait behind the run
    await world.ask("1", "@pm and refunds")
    done = await world.ask(WEB, "@pm plan search", message_id="2")
    assert busy is not None and done is not None
    await world.finish(done)
    world.connect("disconnected")

    samples = await scrape(client, dashboard)

    assert sample(samples, "mpg_sessions", project=WEB, state="running") == 1
    assert sample(samples, "mpg_sessions", project=WEB, state="idle") == 1
    assert sample(samples, "mpg_queue_depth", project=WEB) == 2
    assert sample(samples, "mpg_connection_state", state="disconnected") == 1
    assert sample(samples, "mpg_connection_state", state="ready") == 0
    assert sample(samples, "mpg_project_info", project=WEB, name="web-app") == 1


async def test_messages_and_handoffs_are_counted(
    world: World, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    pm = await world.ask(WEB, "@pm plan coupons", message_id="7")
    assert await world.ask(WEB, "@pm let me in", author="bob", roles=()) is None  # lacks the dev role
    assert pm is not None
    await world.finish(pm, "HANDOFF @engineer: build coupons")
    await world.finish("7:engineer", "HANDOFF @pm: check it")

    samples = await scrape(client, dashboard)

    assert sample(samples, "mpg_messages_received_total", project=WEB) == 2
    assert sample(samples, "mpg_messages_rejected_total", project=WEB) == 1
    assert sample(samples, "mpg_handoffs_total", project=WEB) == 2


async def test_no_event_is_missed_even_when_nobody_reads_the_bus(world: World, clock: FakeClock) -> None:
    metrics = Metrics(world.gateway, clock)
    metrics.attach()
    for i in range(12_000):  # beyond any subscriber queue (10,000): refused, so cheap to handle
        world.post(WEB, f"hello {i}", author="mallory", roles=())
    await world.idle()
    metrics.detach()
    await world.post(WEB, "after detach", author="mallory", roles=())

    assert sum(metrics.received.values()) == sum(metrics.rejected.values()) == 12_000


def test_label_values_from_users_are_escaped(clock: FakeClock, tmp_path: Path) -> None:
    config = {"projects": {"1": {"name": 'we"ird\\name\nx', "directory": "/p"}}}
    core = World(config, tmp_path, clock=clock).gateway

    samples = parse_exposition(Metrics(core, clock).render())

    assert sample(samples, "mpg_project_info", project="1", name='we\\"ird\\\\name\\nx') == 1
    assert escape_label('a"b') == 'a\\"b'


@pytest.mark.parametrize(
    ("value", "text"), [(3.0, "3"), (0.25, "0.25"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (1e20, "1e+20")]
)
def test_values_use_prometheus_number_syntax(value: float, text: str) -> None:
    assert format_value(value) == text


async def test_spend_budgets_and_paused_threads_are_exported_per_project(
    make_world: MakeWorld, client: aiohttp.ClientSession
) -> None:
    config = copy.deepcopy(DEFAULT_CONFIG)
    config["projects"][API] |= {"maxThreadCostUsd": 1.0, "dailyBudgetUsd": 5.0}
    world = make_world(config)
    async with Dashboard(world.gateway, port=0, clock=world.clock) as dashboard:
        assert await world.ask(API, "spend it", message_id="77") == "77"
        paused = world.expect(lambda e: isinstance(e, BudgetPaused))
        await world.finish("77", cost_usd=1.25)
        await paused
        async with client.get(dashboard.url + "metrics") as response:
            samples = parse_exposition(await response.text())

    assert sample(samples, "mpg_spend_today_usd", project=API) == 1.25
    assert sample(samples, "mpg_spend_today_usd", project=WEB) == 0.0
    assert sample(samples, "mpg_daily_budget_usd", project=API) == 5.0
    assert ("mpg_daily_budget_usd", frozenset({("project", WEB)})) not in samples  # no budget, no series
    assert sample(samples, "mpg_paused_threads", project=API, limit="thread") == 1
    assert sample(samples, "mpg_paused_threads", project=API, limit="day") == 0
