"""Lending a session to a terminal and taking it back: the gateway's side of a hold.

A holder asks for a session by key, thread ID or unambiguous key prefix. If a run of it
is in progress the holder chooses: refuse, wait for the run, or stop it. Once the session
is quiet the hold is active and the holder runs ``claude --resume`` with what the grant
says; messages for the session wait, and its thread is told once. When the hold ends
(handed back, or its lease ran out because the holder died) the turns taken in the
terminal are counted from the transcript, a session the CLI carried on under a new ID
is adopted, the thread is told, and the waiting messages run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mpg_tui.core import transcripts
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import Clock
from mpg_tui.core.events import Event, ReleaseReason, SessionHeld, SessionReleased
from mpg_tui.core.holds import HandBack, Hold, HoldError, HoldGrant, IfRunning, clamp_lease
from mpg_tui.core.sessions import SessionManager

log = logging.getLogger(__name__)

MAX_HOLDER_CHARS = 100
MAX_LISTED = 5
_PASSED_ENV = ("CLAUDE_CONFIG_DIR",)
"""Variables of claude's environment a holder needs to find the session; none is a secret."""


def held_text(holder: str) -> str:
    return (
        f"🔒 This session is open in a terminal ({holder}). "
        "Your message waits and runs when the session is handed back."
    )


def released_text(reason: ReleaseReason, turns: int | None, waiting: int, new_session: bool) -> str:
    taken = "" if turns is None else f" {turns} turn{'s' * (turns != 1)} taken there."
    head = (
        "🔓 Back from the terminal." if reason == "handed_back" else "🔓 The terminal holding this session went away."
    )
    parts = [head + taken]
    if new_session:
        parts.append("The terminal carried on in a new claude session; it is resumed from now on.")
    if waiting:
        parts.append(f"Running {waiting} waiting message{'s' * (waiting != 1)} now.")
    return " ".join(parts)


class Lending:
    """Takes, renews and ends the holds of one gateway's sessions."""

    def __init__(
        self,
        *,
        sessions: SessionManager,
        bus: EventBus,
        clock: Clock,
        send: Callable[[str, str], Awaitable[None]],
    ) -> None:
        self._sessions = sessions
        self._holds = sessions.holds
        self._holds.on_expired = self._expired
        self._bus = bus
        self._clock = clock
        self._send = send
        self._marks: dict[str, transcripts.TranscriptMark] = {}
        self._background: set[asyncio.Task[Any]] = set()

    # -- finding the session -------------------------------------------------------------

    def resolve(self, name: str) -> str:
        """The session key ``name`` means: a key, a thread ID or an unambiguous key prefix."""
        name = name.strip()
        keys = self._sessions.known_keys()
        if not name:
            raise HoldError("not_found", "name a session: its key, its thread ID or the start of its key")
        if name in keys:
            return name
        for candidates in (
            [k for k in keys if k.split(":", 1)[0] == name],
            [k for k in keys if k.startswith(name)],
        ):
            if len(candidates) == 1:
                return candidates[0]
            if candidates:
                shown = ", ".join(sorted(candidates)[:MAX_LISTED])
                more = f" and {len(candidates) - MAX_LISTED} more" if len(candidates) > MAX_LISTED else ""
                raise HoldError("ambiguous", f"{name!r} matches {len(candidates)} sessions: {shown}{more}")
        raise HoldError("not_found", f"no session matches {name!r}")

    # -- taking ----------------------------------------------------------------------------

    async def hold(self, name: str, holder: str, *, if_running: IfRunning, lease_s: float) -> HoldGrant:
        key = self.resolve(name)
        info = self._sessions.lendable(key)
        if info is None:
            raise HoldError("not_found", f"session {key} belongs to no configured project")
        if not info.session_id:
            self._sessions.arm_idle(key)
            raise HoldError("no_session", f"{key} has no claude session yet (no run has finished): nothing to resume")
        current = self._holds.get(key)
        if current is not None:
            raise HoldError("held", f"{key} is already open in a terminal ({current.holder})")
        running = self._sessions.running(key)
        if running and if_running == "refuse":
            raise HoldError("busy", f"a run of {key} is in progress: wait for it to end, or stop it")
        holder = " ".join(holder.split())[:MAX_HOLDER_CHARS] or "a terminal"
        hold = Hold(
            key, info.thread_id, info.project_key, holder, self._clock.now(), clamp_lease(lease_s), info.session_id
        )
        self._holds.add(hold)  # from here no new run of the session starts
        try:
            if running:
                log.info("hold of %s by %s waits for its run to %s", key, holder, if_running)
                await self._sessions.quiet(key, stop=if_running == "stop")
        except BaseException:
            await self._end(hold, "holder_gone")  # the holder left while waiting
            raise
        await self._sessions.release_process(key)  # a warm claude must not write the session meanwhile
        current_info = self._sessions.get(key)
        if self._holds.by_id(hold.hold_id) is not hold or current_info is None:
            await self._end(hold, "killed")
            raise HoldError("not_found", f"session {key} was killed while waiting for its run")
        info = current_info
        hold.session_id = info.session_id or hold.session_id
        env = self._sessions.child_env
        self._marks[hold.hold_id] = await asyncio.to_thread(transcripts.mark, env, info.cwd, hold.session_id)
        hold.since = self._clock.now()
        self._holds.activate(hold)
        log.info("session %s lent to %s (claude session %s)", key, holder, hold.session_id)
        held = SessionHeld(
            key=key, project_key=hold.project_key, thread_id=hold.thread_id, holder=holder, session_id=hold.session_id
        )
        self._publish(held)
        return HoldGrant(
            hold_id=hold.hold_id,
            key=key,
            thread_id=hold.thread_id,
            session_id=hold.session_id,
            cwd=info.cwd,
            since=hold.since,
            lease_s=hold.lease_s,
            command=self._sessions.command,
            env={name: env[name] for name in _PASSED_ENV if env and name in env},
        )

    def held_notice(self, key: str) -> str | None:
        hold = self._holds.get(key)
        return held_text(hold.holder) if hold is not None else None

    # -- renewing and ending ------------------------------------------------------------------

    def renew(self, hold_id: str) -> bool:
        hold = self._holds.by_id(hold_id)
        return hold is not None and not hold.ending and self._holds.renew(hold_id)

    async def release(self, hold_id: str) -> HandBack | None:
        hold = self._holds.by_id(hold_id)
        return await self._end(hold, "handed_back") if hold is not None else None

    async def release_key(self, key: str, reason: ReleaseReason) -> None:
        hold = self._holds.get(key)
        if hold is not None:
            await self._end(hold, reason)

    def _expired(self, hold: Hold) -> None:
        task = asyncio.get_running_loop().create_task(self._end(hold, "holder_gone"))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _end(self, hold: Hold, reason: ReleaseReason) -> HandBack | None:
        if hold.ending:
            return None
        hold.ending = True  # still held while the transcript is read: nothing may start before the new ID is known
        mark = self._marks.pop(hold.hold_id, None)
        session_id: str | None = hold.session_id
        turns: int | None = None
        new_session = False
        try:
            if mark is not None:
                known = frozenset(self._sessions.known_session_ids())
                work = await asyncio.to_thread(transcripts.since, mark, known)
                turns = work.turns
                if work.session_id != hold.session_id and reason != "killed":
                    log.info("%s carried on in claude session %s in the terminal", hold.key, work.session_id)
                    self._sessions.set_session_id(hold.key, work.session_id)
                    session_id, new_session = work.session_id, True
        except Exception:
            log.exception("could not read the transcript of %s", hold.key)
        finally:
            self._holds.remove(hold)
        self._publish(
            SessionReleased(
                key=hold.key,
                project_key=hold.project_key,
                thread_id=hold.thread_id,
                reason=reason,
                turns=turns,
                session_id=session_id,
            )
        )
        try:
            if hold.active and reason != "killed":
                waiting = self._sessions.waiting(hold.key)
                await self._send(hold.thread_id, released_text(reason, turns, waiting, new_session))
        finally:
            hold.released.set()  # waiting prompts run now
            self._sessions.arm_idle(hold.key)
        log.info("session %s handed back (%s, %s turns)", hold.key, reason, turns)
        return HandBack(key=hold.key, turns=turns, session_id=session_id)

    def _publish(self, event: Event) -> None:
        self._bus.publish(dataclasses.replace(event, at=self._clock.now()))
