"""Spend against limits: per turn, per thread, per project and calendar day; pauses and continues.

:class:`BudgetBook` owns the money side of the gateway:

* **Spend.** Every ``RunFinished`` on the bus adds its cost to its thread (all sessions of
  the thread, agents included) and to its project's day. A day is the gateway's local
  calendar day (``tz``, default the machine's zone), so the daily budget resets at local
  midnight: a new day simply starts a new tally. Spend lives in this ledger rather than in
  ``sessions.json`` because sessions come and go (``!kill``, pruning) while money spent
  stays spent.
* **Allowance.** Before a turn starts, :meth:`allowance` says whether it may (a thread
  over ``maxThreadCostUsd`` or a project over today's ``dailyBudgetUsd`` may not), and the
  cap to pass claude as ``--max-budget-usd``: the smallest of ``maxTurnCostUsd`` and what
  is left of the thread's and the day's budgets, so claude itself ends a turn at a limit.
* **Warnings.** :meth:`review` after a turn: one 80% warning per thread and one per
  project-day, and whether the turn left a limit spent.
* **Pauses.** A thread stopped at a limit gets a :class:`Pause`: what stopped it, who
  started the work (the requester, who may continue it) and the work it keeps (the
  handoff the chain was about to make, messages sent meanwhile). :meth:`raise_limit` lifts
  a limit once: ``amount`` more than what is spent (default: the configured limit again).
* **Persistence.** All of it (tallies, raised limits, warnings given, pauses with their
  kept prompts) is written to one small JSON file with :func:`~mpg_tui.fsutil.atomic_write`
  after each change, so a limit holds across a restart and kept messages are not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from mpg_tui.config import ProjectView
from mpg_tui.core.api import Budgets, PausedThread, ProjectSpend
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import Clock
from mpg_tui.core.events import BudgetLimit, Event, RunFinished
from mpg_tui.fsutil import atomic_write

log = logging.getLogger(__name__)

BUDGET_FILE_NAME = "budget.json"
WARN_AT = 0.8
"""The share of a budget at which a thread is warned, once."""
MIN_CAP_USD = 0.0001
"""Less than this left counts as nothing left (claude's cap would end the turn at once)."""
MAX_HELD = 20
"""Kept messages per paused thread; more are refused with a reply rather than kept."""
MAX_THREADS = 5000
"""Thread tallies kept (least recently active dropped first): the file stays small."""
FORMAT_VERSION = 1

SETTING: dict[BudgetLimit, str] = {"turn": "maxTurnCostUsd", "thread": "maxThreadCostUsd", "day": "dailyBudgetUsd"}


@dataclass
class Tally:
    """Spend of one thread, or of one project on one day."""

    spent: float = 0.0
    limit: float | None = None
    """The limit as raised by a continue; None: the configured one."""
    warned: bool = False
    last_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"spentUsd": self.spent, "limitUsd": self.limit, "warned": self.warned, "lastAt": self.last_at}

    @classmethod
    def from_json(cls, data: Any) -> Tally:
        if not isinstance(data, dict):
            return cls()
        limit = data.get("limitUsd")
        return cls(
            spent=_number(data.get("spentUsd")),
            limit=float(limit) if isinstance(limit, int | float) and not isinstance(limit, bool) else None,
            warned=data.get("warned") is True,
            last_at=_number(data.get("lastAt")),
        )


@dataclass(frozen=True)
class HeldTurn:
    """Work a paused thread keeps: a human's message, or the handoff a chain was about to make."""

    agent: str | None
    prompt: str
    requester_id: str | None
    from_agent: str | None = None
    """Set for a handoff: the agent that handed off (the chain goes on from there)."""
    rerun: bool = False
    """A turn a limit stopped (before or while it ran): ``prompt`` runs again as it was."""

    def to_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "prompt": self.prompt,
            "requester": self.requester_id,
            "from": self.from_agent,
            "rerun": self.rerun,
        }

    @classmethod
    def from_json(cls, data: Any) -> HeldTurn | None:
        if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
            return None
        return cls(
            _opt_str(data.get("agent")),
            data["prompt"],
            _opt_str(data.get("requester")),
            _opt_str(data.get("from")),
            rerun=data.get("rerun") is True,
        )


@dataclass
class Pause:
    """A thread stopped at a limit, and what it keeps until someone continues it."""

    thread_id: str
    project_key: str
    limit: BudgetLimit
    spent: float
    limit_usd: float
    requester_id: str | None
    since: float
    held: list[HeldTurn] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project_key,
            "limit": self.limit,
            "spentUsd": self.spent,
            "limitUsd": self.limit_usd,
            "requester": self.requester_id,
            "since": self.since,
            "held": [turn.to_json() for turn in self.held],
        }

    @classmethod
    def from_json(cls, thread_id: str, data: Any) -> Pause | None:
        if not isinstance(data, dict) or data.get("limit") not in ("thread", "day"):
            return None
        held = [turn for turn in map(HeldTurn.from_json, data.get("held") or []) if turn is not None]
        return cls(
            thread_id=thread_id,
            project_key=str(data.get("project", "")),
            limit=data["limit"],
            spent=_number(data.get("spentUsd")),
            limit_usd=_number(data.get("limitUsd")),
            requester_id=_opt_str(data.get("requester")),
            since=_number(data.get("since")),
            held=held,
        )


@dataclass(frozen=True)
class Stop:
    """A limit that is spent: which, how much was spent, and the limit in force."""

    limit: BudgetLimit
    spent: float
    limit_usd: float


@dataclass(frozen=True)
class Allowance:
    """May a turn start, and with which ``--max-budget-usd``."""

    cap_usd: float | None = None
    """Pass as ``--max-budget-usd``; None: no cap."""
    capped_by: BudgetLimit | None = None
    stop: Stop | None = None
    """Set when the turn must not start."""


@dataclass(frozen=True)
class Warning_:
    limit: BudgetLimit
    spent: float
    limit_usd: float


@dataclass(frozen=True)
class Review:
    """What one finished turn left: warnings to give (once) and a limit now spent."""

    warnings: list[Warning_]
    stop: Stop | None


@dataclass(frozen=True)
class Raised:
    """The limits a continue raised: (which, new limit) pairs."""

    limits: list[tuple[BudgetLimit, float]]


class BudgetBook:
    """The ledger and the rules; see the module docstring."""

    def __init__(self, bus: EventBus, clock: Clock, path: Path | None, *, tz: tzinfo | None = None) -> None:
        self._clock = clock
        self._path = path
        self._tz = tz
        self._threads: dict[str, Tally] = {}
        self._thread_project: dict[str, str] = {}
        self._days: dict[str, tuple[str, Tally]] = {}  # project key -> (day, tally)
        self._pauses: dict[str, Pause] = {}
        self._write_lock = asyncio.Lock()
        self._dirty = False
        bus.listen(self._observe)

    # -- reading -----------------------------------------------------------------------

    def today(self) -> str:
        return datetime.fromtimestamp(self._clock.now(), self._tz).date().isoformat()

    def thread_spent(self, thread_id: str) -> float:
        tally = self._threads.get(thread_id)
        return tally.spent if tally else 0.0

    def day_spent(self, project_key: str) -> float:
        return self._day(project_key).spent

    def project_of(self, thread_id: str) -> str | None:
        """The project a thread spent for (or is paused in), if the ledger knows it."""
        pause = self._pauses.get(thread_id)
        return pause.project_key if pause is not None else self._thread_project.get(thread_id)

    def pause(self, thread_id: str) -> Pause | None:
        return self._pauses.get(thread_id)

    def pauses(self, project_key: str | None = None) -> list[Pause]:
        return [p for p in self._pauses.values() if project_key is None or p.project_key == project_key]

    def thread_limit(self, project: ProjectView, thread_id: str) -> float | None:
        tally = self._threads.get(thread_id)
        return _effective(tally.limit if tally else None, project.budget.max_thread_cost_usd)

    def day_limit(self, project: ProjectView) -> float | None:
        return _effective(self._day(project.key).limit, project.budget.daily_budget_usd)

    def budgets(self, projects: list[ProjectView]) -> Budgets:
        day = self.today()
        spends = [ProjectSpend(p.key, day, self.day_spent(p.key), self.day_limit(p)) for p in projects]
        paused = [
            PausedThread(p.thread_id, p.project_key, p.limit, p.spent, p.limit_usd, len(p.held), p.since)
            for p in self._pauses.values()
        ]
        return Budgets(projects=spends, paused=paused)

    # -- the rules ---------------------------------------------------------------------

    def spent_limit(self, project: ProjectView, thread_id: str) -> Stop | None:
        """The thread's or the day's limit, if either is spent (the thread's first)."""
        thread_limit = self.thread_limit(project, thread_id)
        spent = self.thread_spent(thread_id)
        if thread_limit is not None and thread_limit - spent < MIN_CAP_USD:
            return Stop("thread", spent, thread_limit)
        day_limit = self.day_limit(project)
        day_spent = self.day_spent(project.key)
        if day_limit is not None and day_limit - day_spent < MIN_CAP_USD:
            return Stop("day", day_spent, day_limit)
        return None

    def allowance(self, project: ProjectView, thread_id: str) -> Allowance:
        """Whether a turn of ``thread_id`` may start now, and its ``--max-budget-usd``."""
        stop = self.spent_limit(project, thread_id)
        if stop is not None:
            return Allowance(stop=stop)
        caps: list[tuple[float, BudgetLimit]] = []
        if project.budget.max_turn_cost_usd is not None:
            caps.append((project.budget.max_turn_cost_usd, "turn"))
        thread_limit = self.thread_limit(project, thread_id)
        if thread_limit is not None:
            caps.append((thread_limit - self.thread_spent(thread_id), "thread"))
        day_limit = self.day_limit(project)
        if day_limit is not None:
            caps.append((day_limit - self.day_spent(project.key), "day"))
        if not caps:
            return Allowance()
        cap, which = min(caps)
        return Allowance(cap_usd=cap, capped_by=which)

    def review(self, project: ProjectView, thread_id: str) -> Review:
        """After a turn: the warnings due (each given once) and a limit the turn left spent."""
        warnings: list[Warning_] = []
        tally = self._threads.get(thread_id)
        thread_limit = self.thread_limit(project, thread_id)
        if (
            tally is not None
            and thread_limit is not None
            and not tally.warned
            and tally.spent >= WARN_AT * thread_limit
        ):
            tally.warned = True
            warnings.append(Warning_("thread", tally.spent, thread_limit))
        day = self._day(project.key)
        day_limit = self.day_limit(project)
        if day_limit is not None and not day.warned and day.spent >= WARN_AT * day_limit:
            day.warned = True
            warnings.append(Warning_("day", day.spent, day_limit))
        stop = self.spent_limit(project, thread_id)
        # A warning is moot when the same turn spent the whole limit: the pause says more.
        warnings = [w for w in warnings if stop is None or w.limit != stop.limit]
        if warnings:
            self._changed()
        return Review(warnings, stop)

    def hold(
        self, project: ProjectView, thread_id: str, stop: Stop, turn: HeldTurn | None, *, requester_id: str | None
    ) -> tuple[Pause, bool]:
        """Pause ``thread_id`` (if it is not yet) and keep ``turn``; returns the pause and
        whether it is new. A turn beyond :data:`MAX_HELD` is not kept (check ``held``)."""
        pause = self._pauses.get(thread_id)
        new = pause is None
        if pause is None:
            pause = Pause(
                thread_id, project.key, stop.limit, stop.spent, stop.limit_usd, requester_id, self._clock.now()
            )
            self._pauses[thread_id] = pause
        else:
            pause.limit, pause.spent, pause.limit_usd = stop.limit, stop.spent, stop.limit_usd
        if turn is not None and len(pause.held) < MAX_HELD:
            pause.held.append(turn)
        self._changed()
        return pause, new

    def raise_limit(self, project: ProjectView, thread_id: str, amount: float | None) -> Raised:
        """Lift the spent limits of ``thread_id`` once: ``amount`` more than is spent.

        Without ``amount``, the configured limit again. Only limits that are spent now are
        raised (after midnight a day pause needs no raise).
        """
        raised: list[tuple[BudgetLimit, float]] = []
        thread_limit = self.thread_limit(project, thread_id)
        spent = self.thread_spent(thread_id)
        if thread_limit is not None and thread_limit - spent < MIN_CAP_USD:
            more = amount if amount is not None else project.budget.max_thread_cost_usd or thread_limit
            tally = self._threads.setdefault(thread_id, Tally(last_at=self._clock.now()))
            tally.limit = max(thread_limit, spent) + more
            raised.append(("thread", tally.limit))
        day_limit = self.day_limit(project)
        day = self._day(project.key)
        if day_limit is not None and day_limit - day.spent < MIN_CAP_USD:
            more = amount if amount is not None else project.budget.daily_budget_usd or day_limit
            day.limit = max(day_limit, day.spent) + more
            raised.append(("day", day.limit))
        if raised:
            self._changed()
        return Raised(raised)

    def release(self, thread_id: str) -> Pause | None:
        """End ``thread_id``'s pause; returns it with the work it kept."""
        pause = self._pauses.pop(thread_id, None)
        if pause is not None:
            self._changed()
        return pause

    # -- spend -------------------------------------------------------------------------

    def _observe(self, event: Event) -> None:
        if isinstance(event, RunFinished) and event.cost_usd > 0:
            self.record(event.project_key, event.thread_id, event.cost_usd)

    def record(self, project_key: str, thread_id: str, cost_usd: float) -> None:
        now = self._clock.now()
        tally = self._threads.pop(thread_id, None) or Tally()
        tally.spent += cost_usd
        tally.last_at = now
        self._threads[thread_id] = tally  # most recently active last
        self._thread_project[thread_id] = project_key
        while len(self._threads) > MAX_THREADS:
            oldest = next(iter(self._threads))
            if oldest in self._pauses:
                break  # never forget what a paused thread spent
            del self._threads[oldest]
            self._thread_project.pop(oldest, None)
        day = self._day(project_key)
        day.spent += cost_usd
        day.last_at = now
        self._changed()

    def _day(self, project_key: str) -> Tally:
        today = self.today()
        current = self._days.get(project_key)
        if current is None or current[0] != today:
            current = (today, Tally())
            self._days[project_key] = current
        return current[1]

    # -- persistence -------------------------------------------------------------------

    def load(self) -> None:
        """Read the ledger; a missing file is an empty ledger, a broken one is set aside."""
        if self._path is None:
            return
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            aside = self._path.with_name(f"{self._path.name}.corrupt-{int(self._clock.now() * 1000)}")
            log.error("budget ledger %s unreadable (%s); moved to %s, starting from zero", self._path, exc, aside)
            with contextlib.suppress(OSError):
                self._path.replace(aside)
            return
        for thread_id, entry in (data.get("threads") or {}).items():
            self._threads[str(thread_id)] = Tally.from_json(entry)
            if isinstance(entry, dict) and isinstance(entry.get("project"), str):
                self._thread_project[str(thread_id)] = entry["project"]
        for project_key, entry in (data.get("days") or {}).items():
            if isinstance(entry, dict) and isinstance(entry.get("day"), str):
                self._days[str(project_key)] = (entry["day"], Tally.from_json(entry))
        for thread_id, entry in (data.get("pauses") or {}).items():
            pause = Pause.from_json(str(thread_id), entry)
            if pause is not None:
                self._pauses[pause.thread_id] = pause

    def render(self) -> str:
        threads = {
            thread_id: {**tally.to_json(), "project": self._thread_project.get(thread_id)}
            for thread_id, tally in self._threads.items()
        }
        days = {key: {"day": day, **tally.to_json()} for key, (day, tally) in self._days.items()}
        pauses = {thread_id: pause.to_json() for thread_id, pause in self._pauses.items()}
        document = {"version": FORMAT_VERSION, "threads": threads, "days": days, "pauses": pauses}
        return json.dumps(document, ensure_ascii=False, indent=1) + "\n"

    async def flush(self, *, durable: bool = False) -> None:
        """Write the ledger if it changed. Off the event loop; writes never overlap.

        Not fsynced by default: it must outlive a killed gateway, which the kernel sees to;
        shutdown writes it durably.
        """
        if self._path is None:
            return
        async with self._write_lock:
            if not self._dirty:
                return
            self._dirty = False
            text = self.render()
            try:
                await asyncio.to_thread(atomic_write, self._path, text, durable=durable)
            except OSError as exc:
                self._dirty = True
                log.error("could not write the budget ledger %s: %s", self._path, exc)

    def _changed(self) -> None:
        self._dirty = True


def _effective(raised: float | None, configured: float | None) -> float | None:
    """The limit in force: none without a configured one (removing it from config lifts it)."""
    if configured is None:
        return None
    return max(raised, configured) if raised is not None else configured


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
