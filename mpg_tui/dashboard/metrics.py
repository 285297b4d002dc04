"""Prometheus metrics for ``GET /metrics``, counted from bus events.

Counters and the run-duration histogram are fed by a synchronous bus listener
(:meth:`EventBus.listen`), so no event is ever missed the way a lagging queue
subscriber could miss one. Gauges (sessions, queue depth, connection state) are read
from the :class:`~mpg_tui.core.api.CoreAPI` at scrape time, so they never drift.

The output is the Prometheus text exposition format, version 0.0.4. ``project``
labels carry the project's channel id (stable); ``mpg_project_info`` maps it to the
display name.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from mpg_tui.core.api import CoreAPI
from mpg_tui.core.clock import Clock
from mpg_tui.core.events import (
    ConnectionState,
    Event,
    HandoffStep,
    MessageReceived,
    MessageRejected,
    RunFinished,
    RunStarted,
    SessionState,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS_S: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
CONNECTION_STATES: tuple[ConnectionState, ...] = ("connecting", "ready", "resuming", "disconnected")
SESSION_STATES: tuple[SessionState, ...] = ("idle", "queued", "running", "recovering", "held")

Labels = tuple[tuple[str, str], ...]


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels) + "}"


@dataclass
class _Family:
    name: str
    kind: str
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def add(self, value: float, labels: Labels = (), suffix: str = "") -> None:
        self.samples.append((self.name + suffix, labels, value))

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {_escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        for name, labels, value in self.samples:
            yield f"{name}{_labels(labels)} {format_value(value)}"


@dataclass
class _Histogram:
    buckets: Sequence[float]
    counts: list[int] = field(init=False)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        self.total += value
        self.count += 1
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1


class Metrics:
    """Counts what the gateway did, and renders it with the core's current state."""

    def __init__(self, core: CoreAPI, clock: Clock, stream_clients: Callable[[], int] = lambda: 0) -> None:
        self._core = core
        self._clock = clock
        self._stream_clients = stream_clients
        self._stop: Callable[[], None] | None = None
        self.received: defaultdict[str, int] = defaultdict(int)
        self.rejected: defaultdict[str, int] = defaultdict(int)
        self.started: defaultdict[str, int] = defaultdict(int)
        self.finished: defaultdict[str, int] = defaultdict(int)
        self.failed: defaultdict[str, int] = defaultdict(int)
        self.handoffs: defaultdict[str, int] = defaultdict(int)
        self.cost_usd: defaultdict[str, float] = defaultdict(float)
        self.tokens: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.durations: dict[str, _Histogram] = {}
        self.dropped_events = 0

    def attach(self) -> None:
        """Start counting events from the core's bus (idempotent)."""
        if self._stop is None:
            self._stop = self._core.bus.listen(self.observe)

    def detach(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None

    def observe(self, event: Event) -> None:
        match event:
            case MessageReceived(project_key=project):
                self.received[project] += 1
            case MessageRejected(project_key=project):
                self.rejected[project] += 1
            case RunStarted(project_key=project):
                self.started[project] += 1
            case RunFinished(project_key=project):
                self.finished[project] += 1
                # Touch the key even on success so the series exists (and rate() works) from the first run.
                self.failed[project] += 0 if event.ok else 1
                self.cost_usd[project] += max(0.0, event.cost_usd)
                self.tokens[(project, "input")] += max(0, event.input_tokens)
                self.tokens[(project, "output")] += max(0, event.output_tokens)
                histogram = self.durations.setdefault(project, _Histogram(DURATION_BUCKETS_S))
                histogram.observe(max(0, event.duration_ms) / 1000)
            case HandoffStep(project_key=project):
                self.handoffs[project] += 1
            case _:
                pass

    def record_dropped(self, count: int) -> None:
        """An event stream client fell behind and lost ``count`` events."""
        self.dropped_events += max(0, count)

    def render(self) -> str:
        families = [*self._state_families(), *self._event_families()]
        lines = [line for family in families for line in family.render()]
        return "\n".join(lines) + "\n"

    def _state_families(self) -> list[_Family]:
        core = self._core
        projects = core.projects()
        sessions = core.sessions()
        keys = [p.key for p in projects]
        keys += sorted({s.project_key for s in sessions} - set(keys))

        info = _Family("mpg_build_info", "gauge", "The running mpg-tui version.")
        info.add(1, (("version", core.version),))
        uptime = _Family("mpg_uptime_seconds", "gauge", "Seconds since the gateway started.")
        uptime.add(max(0.0, round(self._clock.now() - core.started_at, 3)))
        project_info = _Family("mpg_project_info", "gauge", "Display name of each configured project.")
        for p in projects:
            project_info.add(1, (("project", p.key), ("name", p.name)))
        connection = _Family(
            "mpg_connection_state", "gauge", "Discord connection state: 1 for the current state, 0 for the others."
        )
        for conn_state in CONNECTION_STATES:
            connection.add(1 if core.connection_state == conn_state else 0, (("state", conn_state),))
        by_state = _Family("mpg_sessions", "gauge", "Sessions held in memory, by project and state.")
        queue = _Family("mpg_queue_depth", "gauge", "Prompts waiting behind a running one, by project.")
        for key in keys:
            mine = [s for s in sessions if s.project_key == key]
            for state in SESSION_STATES:
                by_state.add(sum(1 for s in mine if s.state == state), (("project", key), ("state", state)))
            queue.add(sum(s.queue_depth for s in mine), (("project", key),))
        streams = _Family("mpg_dashboard_event_streams", "gauge", "Clients connected to /api/events.")
        streams.add(self._stream_clients())
        return [info, uptime, project_info, connection, by_state, queue, streams, *self._budget_families(keys)]

    def _budget_families(self, keys: Sequence[str]) -> list[_Family]:
        budgets = self._core.budgets()
        today = _Family("mpg_spend_today_usd", "gauge", "Dollars spent today (the gateway's local day), by project.")
        budget = _Family(
            "mpg_daily_budget_usd", "gauge", "Today's budget in dollars (raised by any continue), by project with one."
        )
        spends = {p.project_key: p for p in budgets.projects}
        for key in keys:
            spend = spends.get(key)
            today.add(spend.spent_usd if spend else 0.0, (("project", key),))
            if spend is not None and spend.budget_usd is not None:
                budget.add(spend.budget_usd, (("project", key),))
        paused = _Family("mpg_paused_threads", "gauge", "Threads paused at a spending limit, by project and limit.")
        for key in keys:
            for limit in ("thread", "day"):
                count = sum(1 for p in budgets.paused if p.project_key == key and p.limit == limit)
                paused.add(count, (("project", key), ("limit", limit)))
        return [today, budget, paused]

    def _event_families(self) -> list[_Family]:
        def counter(name: str, help_text: str, values: dict[str, int] | dict[str, float]) -> _Family:
            family = _Family(name, "counter", help_text)
            for project in sorted(values):
                family.add(values[project], (("project", project),))
            return family

        tokens = _Family("mpg_tokens_total", "counter", "Tokens used by claude runs, by project and direction.")
        for project, direction in sorted(self.tokens):
            tokens.add(self.tokens[(project, direction)], (("project", project), ("direction", direction)))
        duration = _Family("mpg_run_duration_seconds", "histogram", "Duration of finished claude runs.")
        for project in sorted(self.durations):
            h = self.durations[project]
            for bound, count in zip(h.buckets, h.counts, strict=True):
                duration.add(count, (("project", project), ("le", format_value(bound))), "_bucket")
            duration.add(h.count, (("project", project), ("le", "+Inf")), "_bucket")
            duration.add(h.total, (("project", project),), "_sum")
            duration.add(h.count, (("project", project),), "_count")
        dropped = _Family(
            "mpg_dashboard_events_dropped_total", "counter", "Events a slow /api/events client did not receive."
        )
        dropped.add(self.dropped_events)
        return [
            counter("mpg_messages_received_total", "Chat messages that reached a mapped channel.", self.received),
            counter("mpg_messages_rejected_total", "Chat messages refused (role, rate limit, ...).", self.rejected),
            counter("mpg_runs_started_total", "Claude runs started.", self.started),
            counter("mpg_runs_finished_total", "Claude runs finished, successfully or not.", self.finished),
            counter("mpg_runs_failed_total", "Claude runs that finished with an error.", self.failed),
            counter("mpg_handoffs_total", "Agent handoff hops.", self.handoffs),
            counter("mpg_cost_usd_total", "Cost reported by claude, in US dollars.", self.cost_usd),
            tokens,
            duration,
            dropped,
        ]
