"""Catch-up: answer what was posted while the gateway was away.

Discord does not replay messages to a bot that was stopped, or whose session was not
resumed (a fresh IDENTIFY after a long outage). So on start, and after every such
reconnect, each mapped channel and each thread the journal knows is read back from the
newest message the journal saw there, and what arrived meanwhile is handled as if it
had just come in: in the order it was posted, commands included, each exactly once (the
journal claims every message ID once, so one also arriving live is not handled twice).

It is bounded: messages older than ``catchUpMaxAgeMs`` are skipped, at most
``catchUpMaxMessages`` are read per place (the newest; older ones are skipped), threads
are the :data:`MAX_THREADS` most recently active. Every skip is counted and told to the
operator (a warning in the log, and :class:`~mpg_tui.core.events.CatchUpFinished`). A
place the journal has never seen (a new channel, a new journal) is not read back, only
marked: catching up from the beginning of a channel would answer what another gateway
(MPG, before the switch) already answered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mpg_tui.config import GatewayConfig
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import Clock
from mpg_tui.core.events import CatchUpFinished
from mpg_tui.core.journal import KEEP_FINISHED_MS, Journal
from mpg_tui.core.ports import ChatError, ChatPort, InboundMessage

log = logging.getLogger(__name__)

MAX_THREADS = 50
"""Threads read back at most, the most recently active first."""
READS_AT_ONCE = 4
"""History reads in flight at once (each is one REST call)."""

Accept = Callable[[InboundMessage], Awaitable[object]]


@dataclass(frozen=True)
class Place:
    channel_id: str
    parent_id: str | None
    """Set for a thread: its channel."""


@dataclass
class CatchUpReport:
    places: int = 0
    handled: int = 0
    skipped_old: int = 0
    skipped_over_cap: int = 0
    failed: int = 0


async def catch_up(
    *, config: GatewayConfig, chat: ChatPort, journal: Journal, clock: Clock, bus: EventBus, accept: Accept
) -> CatchUpReport:
    """Read back every place and hand what arrived to ``accept`` (which returns once it is queued)."""
    report = CatchUpReport()
    defaults = config.defaults
    if not defaults.catch_up:
        return report
    now = clock.now()
    cutoff = now - defaults.catch_up_max_age_ms / 1000
    places = [Place(channel_id, None) for channel_id in config.projects]
    places += [Place(c.channel_id, c.parent_id) for c in journal.threads(now - KEEP_FINISHED_MS / 1000, MAX_THREADS)]
    report.places = len(places)
    cap = defaults.catch_up_max_messages
    at_once = asyncio.Semaphore(READS_AT_ONCE)

    async def read(place: Place) -> list[InboundMessage] | None:
        async with at_once:
            after = journal.cursor(place.channel_id)
            try:
                if after is None:
                    newest = await chat.recent_messages(place.channel_id, 1)
                    if newest:
                        journal.saw(place.channel_id, newest[-1].id, place.parent_id)
                    return []
                return await chat.recent_messages(place.channel_id, cap + 1, after=after)
            except ChatError as exc:
                log.warning("catch-up could not read %s: %s", place.channel_id, exc)
                report.failed += 1
                return None

    # Read side by side, handle one after another in each place's order.
    found = await asyncio.gather(*(read(place) for place in places))
    for place, messages in zip(places, found, strict=True):
        if not messages:
            continue
        if len(messages) > cap:
            report.skipped_over_cap += len(messages) - cap
            messages = messages[-cap:]
        for msg in messages:
            if place.parent_id is not None and msg.parent_channel_id is None:
                msg = dataclasses.replace(msg, parent_channel_id=place.parent_id)
            if msg.author_is_bot or journal.entry(msg.id) is not None:
                continue
            if msg.created_at and msg.created_at < cutoff:
                report.skipped_old += 1
                continue
            report.handled += 1
            await accept(msg)
        journal.saw(place.channel_id, messages[-1].id, place.parent_id)

    log.info(
        "Catch-up finished: %d channel(s) and thread(s) read, %d message(s) posted while away handled",
        report.places,
        report.handled,
    )
    if report.skipped_old:
        log.warning(
            "Catch-up skipped %d message(s) older than %s min; they were not answered",
            report.skipped_old,
            f"{defaults.catch_up_max_age_ms / 60000:g}",
        )
    if report.skipped_over_cap:
        log.warning(
            "Catch-up skipped at least %d older message(s) beyond catchUpMaxMessages (%d) in a channel or thread",
            report.skipped_over_cap,
            cap,
        )
    bus.publish(
        CatchUpFinished(
            places=report.places,
            handled=report.handled,
            skipped_old=report.skipped_old,
            skipped_over_cap=report.skipped_over_cap,
        )
    )
    return report
