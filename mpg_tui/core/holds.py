"""Holds: a session lent to a terminal (``claude --resume``) and handed back.

While a session is held none of its runs start: messages for it wait in its queue, so
the gateway and the operator never write one claude session at the same time. A hold
is a lease: its holder (a cockpit, ``mpg-tui resume``) renews it while the terminal's
claude runs and releases it when claude exits. A holder that dies (a crashed cockpit, a
closed SSH session) stops renewing, and the clock releases the hold when its lease runs
out, so a thread never waits forever.

:class:`HoldBook` keeps the holds and their lease timers; the session manager asks it
whether a session may run, and the gateway takes and releases holds through it.
:func:`keep_hold` is the holder's side: take, renew, release, over any :class:`HoldControl`
(the core in this process, or a gateway's control API).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from mpg_tui.core.clock import Clock, TimerHandle

log = logging.getLogger(__name__)

IfRunning = Literal["refuse", "wait", "stop"]
"""What taking a hold does about a run in progress: refuse, wait for it to end, or stop it."""
IF_RUNNING: tuple[IfRunning, ...] = ("refuse", "wait", "stop")
HoldErrorCode = Literal["not_found", "ambiguous", "no_session", "busy", "held"]

DEFAULT_LEASE_S = 30.0
"""How long a hold lasts without renewal: long enough for a network blip, short enough for a thread."""
MIN_LEASE_S = 1.0
MAX_LEASE_S = 600.0


class HoldError(Exception):
    """A hold that cannot be taken; ``code`` says why, the message is for the operator."""

    def __init__(self, code: HoldErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: HoldErrorCode = code
        self.message = message


@dataclass(frozen=True)
class HoldGrant:
    """What a holder gets: the hold's ID (to renew and release it) and what to resume."""

    hold_id: str
    key: str
    thread_id: str
    session_id: str
    cwd: str
    """Where to run ``claude --resume`` (claude finds a session only from its directory)."""
    since: float
    lease_s: float
    command: tuple[str, ...] = ()
    """The claude the gateway runs (the holder may use its own)."""
    env: dict[str, str] = field(default_factory=dict)
    """Variables claude needs to find the session (``CLAUDE_CONFIG_DIR``); never secrets."""


@dataclass(frozen=True)
class HandBack:
    """What a released hold came to."""

    key: str
    turns: int | None
    """Turns taken in the terminal (None: the transcript was not found here)."""
    session_id: str | None
    """The claude session the gateway resumes from now on (changed if the CLI changed it)."""


class HoldControl(Protocol):
    """The three calls a holder makes (the core's API has them)."""

    async def hold(
        self, name: str, holder: str, *, if_running: IfRunning = "refuse", lease_s: float = DEFAULT_LEASE_S
    ) -> HoldGrant: ...

    async def renew_hold(self, hold_id: str) -> bool: ...

    async def release_hold(self, hold_id: str) -> HandBack | None: ...


class Hold:
    """One session held by one holder."""

    def __init__(
        self, key: str, thread_id: str, project_key: str, holder: str, since: float, lease_s: float, session_id: str
    ) -> None:
        self.hold_id = secrets.token_hex(8)
        self.key = key
        self.thread_id = thread_id
        self.project_key = project_key
        self.holder = holder
        self.since = since
        self.lease_s = lease_s
        self.session_id = session_id
        self.notified = False
        self.ending = False
        """Being handed back: renewals are refused, runs still wait until ``released`` is set."""
        self.active = False
        """False while waiting for a run in progress to end; the lease only runs once active."""
        self.timer: TimerHandle | None = None
        self.released = asyncio.Event()

    def claim_notice(self) -> bool:
        """True the first time only: the thread is told once per hold."""
        first, self.notified = not self.notified, True
        return first


class HoldBook:
    """Every hold of one gateway, one per session key, each with its lease timer."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._by_key: dict[str, Hold] = {}
        self._by_id: dict[str, Hold] = {}
        self.on_expired: Callable[[Hold], None] = lambda _hold: None
        """Called when a lease runs out (the gateway releases the hold then)."""

    def get(self, key: str) -> Hold | None:
        return self._by_key.get(key)

    def by_id(self, hold_id: str) -> Hold | None:
        return self._by_id.get(hold_id)

    def held(self, key: str) -> bool:
        return key in self._by_key

    def holds(self) -> list[Hold]:
        return list(self._by_key.values())

    def add(self, hold: Hold) -> None:
        if hold.key in self._by_key:
            raise HoldError("held", f"session {hold.key} is already held by {self._by_key[hold.key].holder}")
        self._by_key[hold.key] = hold
        self._by_id[hold.hold_id] = hold

    def activate(self, hold: Hold) -> None:
        """The session is quiet and lent out: the lease starts now."""
        hold.active = True
        self.renew(hold.hold_id)

    def renew(self, hold_id: str) -> bool:
        """Push the hold's lease out by its length; False when there is no such hold (any more)."""
        hold = self._by_id.get(hold_id)
        if hold is None:
            return False
        if hold.active:
            if hold.timer is not None:
                hold.timer.cancel()
            hold.timer = self._clock.call_later(hold.lease_s, lambda: self._expire(hold))
        return True

    def remove(self, hold: Hold) -> bool:
        """Forget ``hold`` (its waiters are woken by the caller's ``released.set()``); False if it was gone."""
        if self._by_id.get(hold.hold_id) is not hold:
            return False
        del self._by_id[hold.hold_id]
        del self._by_key[hold.key]
        if hold.timer is not None:
            hold.timer.cancel()
            hold.timer = None
        return True

    def _expire(self, hold: Hold) -> None:
        hold.timer = None
        if self._by_id.get(hold.hold_id) is hold:
            log.warning("the hold of %s by %s ran out (its holder stopped renewing)", hold.key, hold.holder)
            self.on_expired(hold)

    async def wait_released(self, key: str) -> None:
        """Until ``key`` is not held (returns at once when it is not)."""
        while (hold := self._by_key.get(key)) is not None:
            await hold.released.wait()


def clamp_lease(lease_s: float) -> float:
    return min(MAX_LEASE_S, max(MIN_LEASE_S, lease_s))


@contextlib.asynccontextmanager
async def keep_hold(
    control: HoldControl,
    name: str,
    holder: str,
    *,
    if_running: IfRunning = "refuse",
    lease_s: float = DEFAULT_LEASE_S,
    on_lost: Callable[[str], None] | None = None,
) -> AsyncIterator[HoldGrant]:
    """``async with keep_hold(core, key, "cockpit") as grant:`` run claude; the hold is renewed meanwhile.

    Renews three times per lease; releases on the way out, however the block ends. A
    renewal that finds the hold gone (killed, or expired while unreachable) calls
    ``on_lost`` once with the reason.
    """
    grant = await control.hold(name, holder, if_running=if_running, lease_s=lease_s)
    lost = False

    async def renew() -> None:
        nonlocal lost
        while True:
            await asyncio.sleep(grant.lease_s / 3)
            try:
                still = await control.renew_hold(grant.hold_id)
            except Exception as exc:  # unreachable for a moment: the lease covers a few misses
                log.warning("could not renew the hold of %s: %s", grant.key, exc)
                continue
            if not still and not lost:
                lost = True
                if on_lost is not None:
                    on_lost(f"the gateway no longer holds {grant.key} for this terminal")
                return

    renewer = asyncio.create_task(renew(), name=f"renew hold {grant.key}")
    try:
        yield grant
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        if not lost:
            try:
                await asyncio.shield(control.release_hold(grant.hold_id))
            except Exception as exc:
                log.warning("could not hand %s back (its lease runs out on its own): %s", grant.key, exc)
