"""``/metrics``: valid Prometheus text exposition, counters from bus events, gauges from the core."""

from __future__ import annotations

import math
import re

import aiohttp
import pytest

from mpg_tui.core.clock import FakeClock
from mpg_tui.core.events import MessageReceived, MessageRejected
from mpg_tui.dashboard import Dashboard
from mpg_tui.dashboard.metrics import Metrics, escape_label, format_value
from tests.dashboard.fake_core import FakeCore

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
    assert sample(samples, "mpg_build_info", version="0.1.0-test") == 1
    assert sample(samples, "mpg_dashboard_events_dropped_total") == 0


async def test_runs_are_counted_by_project_with_failures_costs_tokens_and_durations(
    core: FakeCore, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    web, api = core.project_key(0), core.project_key(1)
    for key, ok, seconds in (("1", True, 0.5), ("2", True, 20), ("3", False, 400)):
        core.start_run(key)
        core.finish_run(key, ok=ok, duration_ms=int(seconds * 1000), cost_usd=0.25, input_tokens=100, output_tokens=10)
    core.start_run("4", project=1)

    samples = await scrape(client, dashboard)

    assert sample(samples, "mpg_runs_started_total", project=web) == 3
    assert sample(samples, "mpg_runs_started_total", project=api) == 1
    assert sample(samples, "mpg_runs_finished_total", project=web) == 3
    assert sample(samples, "mpg_runs_failed_total", project=web) == 1
    assert sample(samples, "mpg_cost_usd_total", project=web) == 0.75
    assert sample(samples, "mpg_tokens_total", project=web, direction="input") == 300
    assert sample(samples, "mpg_tokens_total", project=web, direction="output") == 30
    assert sample(samples, "mpg_run_duration_seconds_count", project=web) == 3
    assert sample(samples, "mpg_run_duration_seconds_sum", project=web) == 420.5
    assert sample(samples, "mpg_run_duration_seconds_bucket", project=web, le="1") == 1
    assert sample(samples, "mpg_run_duration_seconds_bucket", project=web, le="30") == 2
    assert sample(samples, "mpg_run_duration_seconds_bucket", project=web, le="300") == 2
    assert sample(samples, "mpg_run_duration_seconds_bucket", project=web, le="600") == 3
    assert sample(samples, "mpg_run_duration_seconds_bucket", project=web, le="+Inf") == 3


async def test_gauges_follow_the_cores_current_sessions_queues_and_connection(
    core: FakeCore, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    web = core.project_key(0)
    core.start_run("1", queue_depth=2)
    core.start_run("2", queue_depth=1)
    core.finish_run("2")
    core.set_connection("disconnected")

    samples = await scrape(client, dashboard)

    assert sample(samples, "mpg_sessions", project=web, state="running") == 1
    assert sample(samples, "mpg_sessions", project=web, state="idle") == 1
    assert sample(samples, "mpg_queue_depth", project=web) == 3
    assert sample(samples, "mpg_connection_state", state="disconnected") == 1
    assert sample(samples, "mpg_connection_state", state="ready") == 0
    assert sample(samples, "mpg_project_info", project=web, name="web-app") == 1


async def test_messages_and_handoffs_are_counted(
    core: FakeCore, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    web = core.project_key(0)
    core.bus.publish(
        MessageReceived(project_key=web, channel_id=web, thread_id=None, message_id="m", author="ann", content="hi")
    )
    core.bus.publish(MessageRejected(project_key=web, channel_id=web, author="bob", reason="rate limited"))
    core.handoff("7", "pm")
    core.handoff("7", "engineer", from_agent="pm")

    samples = await scrape(client, dashboard)

    assert sample(samples, "mpg_messages_received_total", project=web) == 1
    assert sample(samples, "mpg_messages_rejected_total", project=web) == 1
    assert sample(samples, "mpg_handoffs_total", project=web) == 2


async def test_no_event_is_missed_even_when_nobody_reads_the_bus(core: FakeCore, clock: FakeClock) -> None:
    metrics = Metrics(core, clock)
    metrics.attach()
    for i in range(20_000):  # far beyond any subscriber queue
        core.start_run(str(i))
    metrics.detach()
    core.start_run("after-detach")

    assert sum(metrics.started.values()) == 20_000


def test_label_values_from_users_are_escaped(clock: FakeClock) -> None:
    config = {"projects": {"1": {"name": 'we"ird\\name\nx', "directory": "/p"}}}
    core = FakeCore(config, clock=clock)

    samples = parse_exposition(Metrics(core, clock).render())

    assert sample(samples, "mpg_project_info", project="1", name='we\\"ird\\\\name\\nx') == 1
    assert escape_label('a"b') == 'a\\"b'


@pytest.mark.parametrize(
    ("value", "text"), [(3.0, "3"), (0.25, "0.25"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (1e20, "1e+20")]
)
def test_values_use_prometheus_number_syntax(value: float, text: str) -> None:
    assert format_value(value) == text
