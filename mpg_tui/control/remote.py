"""The core of a gateway running elsewhere, as a :class:`~mpg_tui.core.api.CoreAPI`.

:class:`RemoteCore` keeps a copy of a gateway's state: the snapshot it attached with,
kept current by the event stream, each event carrying the session, chain and totals it
left. It republishes every event on its own bus, so a face attached to it cannot tell it
from the core in its own process. Commands go to the gateway over the control API.

When the link drops (the gateway restarts, the network goes), the view says
``disconnected``, keeps retrying, and on return resumes the stream where it stopped, or
takes a fresh snapshot and publishes :class:`~mpg_tui.core.events.StateResynced` naming
everything that may have changed.

With a ``label`` (several gateways in one cockpit) every session key, thread, channel and
project key is prefixed ``<label>/`` and project names read ``<label> · <name>``;
:class:`~mpg_tui.control.multi.MultiCore` merges such views and routes each command to its
gateway.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp

from mpg_tui import __version__
from mpg_tui.config import ProjectView
from mpg_tui.control import protocol
from mpg_tui.control.client import ControlClient, Endpoint
from mpg_tui.control.protocol import JSON, ControlError, ProtocolError
from mpg_tui.core.api import ApprovalInfo, Budgets, HandoffChain, JournalEntry, SessionInfo, ThreadCounts, Totals
from mpg_tui.core.bus import EventBus
from mpg_tui.core.conversation import ConversationEntry
from mpg_tui.core.events import (
    ApprovalDecided,
    ApprovalRequested,
    ConnectionChanged,
    ConnectionState,
    Event,
    StateResynced,
)
from mpg_tui.core.holds import DEFAULT_LEASE_S, HandBack, HoldError, HoldErrorCode, HoldGrant, IfRunning

log = logging.getLogger(__name__)

RETRY_MIN_S = 0.2
RETRY_MAX_S = 5.0
_LINK_ERRORS = (aiohttp.ClientError, OSError, ControlError, ProtocolError, TimeoutError)
_LABELLED_FIELDS = ("key", "project_key", "thread_id", "channel_id", "id")
_HOLD_ERRORS: tuple[HoldErrorCode, ...] = ("not_found", "ambiguous", "no_session", "busy", "held")
T = TypeVar("T")


class GatewayUnreachable(ConnectionError):
    """A command was given while the gateway cannot be reached."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ControlError):
        return exc.message
    return str(exc) or type(exc).__name__


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class RemoteCore:
    """A running gateway's core, reached through its control API."""

    def __init__(
        self,
        endpoint: Endpoint,
        snapshot: JSON | None = None,
        *,
        bus: EventBus | None = None,
        retry_min_s: float = RETRY_MIN_S,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        self.endpoint = endpoint
        self.label = endpoint.label
        self.bus = bus or EventBus()
        self.version = __version__
        self.started_at = time.time()
        self._prefix = f"{self.label}/" if self.label else ""
        self._retry = (retry_min_s, retry_max_s)
        self._projects: list[ProjectView] = []
        self._sessions: dict[str, SessionInfo] = {}
        self._chains: OrderedDict[str, HandoffChain] = OrderedDict()
        self._totals = Totals(0, 0, 0.0, 0, 0)
        self._budgets = Budgets()
        self._messages: dict[str, ThreadCounts] = {}
        self._approvals: dict[str, ApprovalInfo] = {}
        self._remote_connection: ConnectionState = "disconnected"
        self._instance: str | None = None
        self._seq = 0
        self._linked = False
        self._link_detail = "not attached yet"
        self._link_changed = asyncio.Event()
        self.resyncs = 0
        """How many fresh snapshots replaced the copy after a reconnect (tests read it)."""
        if snapshot is not None:
            self._load(snapshot)

    @classmethod
    async def attach(cls, endpoint: Endpoint, **options: Any) -> RemoteCore:
        """A view holding the gateway's current snapshot; raises when it cannot be reached."""
        async with ControlClient(endpoint) as client:
            return cls(endpoint, await client.snapshot(), **options)

    # -- CoreAPI: reads ----------------------------------------------------------------------

    @property
    def connection_state(self) -> ConnectionState:
        return self._remote_connection if self._linked else "disconnected"

    @property
    def linked(self) -> bool:
        """Whether the event stream is up now."""
        return self._linked

    @property
    def instance(self) -> str | None:
        """Which life of the gateway the copy comes from (changes when it restarts)."""
        return self._instance

    def projects(self) -> Sequence[ProjectView]:
        return list(self._projects)

    def sessions(self) -> list[SessionInfo]:
        return list(self._sessions.values())

    def session(self, key: str) -> SessionInfo | None:
        return self._sessions.get(key)

    def chains(self) -> list[HandoffChain]:
        return list(self._chains.values())

    def totals(self) -> Totals:
        return self._totals

    def budgets(self) -> Budgets:
        return self._budgets

    def message_counts(self) -> dict[str, ThreadCounts]:
        return dict(self._messages)

    def recent_messages(self, limit: int = 100) -> list[JournalEntry]:
        return []  # the journal's entries stay on the gateway (its dashboard lists them)

    def approvals(self) -> list[ApprovalInfo]:
        return sorted(self._approvals.values(), key=lambda a: a.created_at)

    # -- CoreAPI: commands -----------------------------------------------------------------

    def elsewhere(self, name: str) -> tuple[str, str] | None:
        """(host, the gateway's own key) when ``name``'s gateway runs on another machine.

        A Unix socket, or an HTTP door on a loopback address, is this machine: its sessions'
        directories and tmux server are here too.
        """
        own = self._remote_name(name)
        if own is None or self.endpoint.socket_file is not None:
            return None
        host = urlsplit(self.endpoint.url).hostname or ""
        return None if host in LOOPBACK_HOSTS else (host, own)

    def _remote_name(self, name: str) -> str | None:
        """``name`` as the gateway knows it, or None when it is not one of this gateway's."""
        if not name.startswith(self._prefix):
            return None
        return name[len(self._prefix) :]

    async def _command(self, name: str, **args: str) -> Any:
        try:
            async with ControlClient(self.endpoint) as client:
                return await client.command(name, **args)
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise GatewayUnreachable(f"the gateway at {self.endpoint.describe()} cannot be reached") from exc

    async def kill(self, key: str) -> bool:
        remote = self._remote_name(key)
        return remote is not None and bool(await self._command("kill", key=remote))

    async def restart(self, key: str) -> bool:
        remote = self._remote_name(key)
        return remote is not None and bool(await self._command("restart", key=remote))

    async def stop(self, key: str) -> bool:
        remote = self._remote_name(key)
        return remote is not None and bool(await self._command("stop", key=remote))

    async def post(self, channel_id: str, author: str, content: str) -> None:
        remote = self._remote_name(channel_id)
        if remote is None:
            raise ValueError(f"channel {channel_id} is not one of {self.label}'s")
        await self._command("post", channel_id=remote, author=author, content=content)

    async def continue_thread(self, thread_id: str, amount_usd: float | None = None) -> str:
        remote = self._remote_name(thread_id)
        if remote is None:
            raise ValueError(f"thread {thread_id} is not one of {self.label}'s")
        amount = {} if amount_usd is None else {"amount_usd": repr(amount_usd)}
        return str(await self._command("continue", thread_id=remote, **amount))

    async def hold(
        self, name: str, holder: str, *, if_running: IfRunning = "refuse", lease_s: float = DEFAULT_LEASE_S
    ) -> HoldGrant:
        remote = self._remote_name(name)
        if remote is None:
            raise HoldError("not_found", f"{name} is not a session of {self.label}")
        try:
            data = await self._command(
                "hold", session=remote, holder=holder, if_running=if_running, lease_s=str(lease_s)
            )
        except ControlError as exc:
            code = next((c for c in _HOLD_ERRORS if c == exc.code), None)
            if code is None:
                raise
            raise HoldError(code, exc.message) from None
        grant = protocol.read_grant(data)
        # The hold's ID names its gateway too, so a renewal or release finds its way back.
        return dataclasses.replace(self._relabel(grant), hold_id=self._prefix + grant.hold_id)

    async def renew_hold(self, hold_id: str) -> bool:
        remote = self._remote_name(hold_id)
        return remote is not None and bool(await self._command("renew_hold", hold_id=remote))

    async def release_hold(self, hold_id: str) -> HandBack | None:
        remote = self._remote_name(hold_id)
        if remote is None:
            return None
        back = protocol.read_hand_back(await self._command("release_hold", hold_id=remote))
        return self._relabel(back) if back is not None else None

    async def conversation(self, thread_id: str) -> list[ConversationEntry]:
        remote = self._remote_name(thread_id)
        if remote is None:
            return []
        data = await self._command("conversation", thread_id=remote)
        return [ConversationEntry.from_dict(item) for item in data or [] if isinstance(item, dict)]

    async def decide(self, approval_id: str, choice: str) -> str:
        remote = self._remote_name(approval_id)
        if remote is None:
            return "This request is not one of this gateway's."
        return str(await self._command("approval_decide", id=remote, choice=choice))

    async def ask_permission(self, token: str, tool_name: str, tool_input: str, tool_use_id: str) -> dict[str, Any]:
        result = await self._command(
            "approval_ask", token=token, tool_name=tool_name, input=tool_input, tool_use_id=tool_use_id
        )
        return dict(result) if isinstance(result, dict) else {"outcome": "deny", "message": "no decision"}

    # -- the copy ---------------------------------------------------------------------------

    def _relabel(self, value: T) -> T:
        if not self._prefix:
            return value
        changes = {}
        for name in _LABELLED_FIELDS:
            current = getattr(value, name, None)
            if isinstance(current, str):
                changes[name] = self._prefix + current
        return dataclasses.replace(value, **changes) if changes else value  # type: ignore[type-var]

    def _relabel_budgets(self, budgets: Budgets) -> Budgets:
        return Budgets(
            projects=[self._relabel(p) for p in budgets.projects],
            paused=[self._relabel(p) for p in budgets.paused],
        )

    def _load(self, document: JSON) -> tuple[set[str], set[str]]:
        """Replace the copy with a snapshot; returns the session keys and threads it may have changed."""
        gateway = document.get("gateway") or {}
        before_keys, before_threads = set(self._sessions), set(self._chains)
        projects = self._read_projects(document.get("projects", []))
        sessions = [self._relabel(protocol.read_session(s)) for s in document.get("sessions", [])]
        chains = [self._relabel(protocol.read_chain(c)) for c in document.get("chains", [])]
        self._projects = projects
        self._sessions = {s.key: s for s in sessions}
        self._chains = OrderedDict((c.thread_id, c) for c in chains)
        self._totals = protocol.read_totals(document.get("totals", {}))
        self._budgets = self._relabel_budgets(protocol.read_budgets(document.get("budgets")))
        self._messages = {self._prefix + t: c for t, c in protocol.read_counts(document.get("messages")).items()}
        approvals = [self._relabel(protocol.read_approval(a)) for a in document.get("approvals", [])]
        self._approvals = {a.id: a for a in approvals}
        self._remote_connection = protocol.read_connection(gateway.get("connection"))
        self.version = str(gateway.get("version", self.version))
        self.started_at = float(gateway.get("started_at", self.started_at))
        self._instance = str(document.get("instance"))
        self._seq = int(document.get("seq", 0))
        return before_keys | set(self._sessions), before_threads | set(self._chains)

    def _read_projects(self, raw_projects: Any) -> list[ProjectView]:
        projects = []
        for raw in raw_projects or []:
            view = protocol.read_project(raw)
            if self._prefix:
                view = protocol.read_project(raw, key=self._prefix + view.key, name=f"{self.label} · {view.name}")
            projects.append(view)
        return projects

    def _apply(self, message: JSON) -> Event | None:
        """Bring the copy up to date with one stream line; the event to republish, if any."""
        self._seq = int(message["seq"])
        if "projects" in message:  # the gateway's config was reloaded
            self._projects = self._read_projects(message["projects"])
        if "session" in message:
            session = message["session"]
            raw_event = message.get("event") or {}
            key = self._prefix + str(raw_event.get("key", ""))
            if session is None:
                self._sessions.pop(key, None)
            else:
                info = self._relabel(protocol.read_session(session))
                self._sessions[info.key] = info
        chain = message.get("chain")
        if chain is not None:
            found = self._relabel(protocol.read_chain(chain))
            self._chains[found.thread_id] = found
            self._chains.move_to_end(found.thread_id)
        if "totals" in message:
            self._totals = protocol.read_totals(message["totals"])
        if "budgets" in message:
            self._budgets = self._relabel_budgets(protocol.read_budgets(message["budgets"]))
        for thread, counts in protocol.read_counts(message.get("messages")).items():
            self._messages[self._prefix + thread] = counts
        event = protocol.read_event(message.get("event"))
        if event is None:
            return None
        if isinstance(event, ConnectionChanged):
            self._remote_connection = event.state
            if not self._linked:
                return None
        event = self._relabel(event)
        if isinstance(event, ApprovalRequested):
            self._approvals[event.id] = protocol.approval_from_event(event)
        elif isinstance(event, ApprovalDecided):
            self._approvals.pop(event.id, None)
        return event

    # -- the link --------------------------------------------------------------------------

    def _set_link(self, linked: bool, detail: str) -> None:
        if linked == self._linked and (linked or detail == self._link_detail):
            return
        was_linked = self._linked
        self._linked, self._link_detail = linked, detail
        changed, self._link_changed = self._link_changed, asyncio.Event()
        changed.set()
        if linked or was_linked:
            log.info("control link to %s: %s", self.endpoint.describe(), detail)
        self.bus.publish(ConnectionChanged(state=self.connection_state, detail=detail))

    async def wait_linked(self, linked: bool = True, timeout: float = 30.0) -> None:
        """Until the event stream is up (or, with ``linked=False``, down)."""
        async with asyncio.timeout(timeout):
            while self._linked != linked:
                await self._link_changed.wait()

    async def run(self) -> None:
        """Follow the gateway until cancelled: reconnect after every loss, resync when needed."""
        low, high = self._retry
        delay = low
        while True:
            try:
                async with ControlClient(self.endpoint) as client:
                    await self._follow(client)
                delay = low
                continue  # asked to resync: at once
            except _LINK_ERRORS as exc:
                self._set_link(False, f"gateway unreachable: {_describe(exc)}")
            await asyncio.sleep(delay)
            delay = min(high, delay * 2)

    async def _follow(self, client: ControlClient) -> None:
        """Stream events into the copy; returns when the gateway asks for a resync."""
        if self._instance is None:
            self._resynced(await client.snapshot())
        async with client.events(self._seq, self._instance) as lines:
            async for message in lines:
                kind = message.get("type")
                if kind == "event":
                    event = self._apply(message)
                    if event is not None:
                        self.bus.publish(event)
                elif kind == "hello":
                    if message.get("instance") == self._instance:
                        self._set_link(True, f"attached to {self.endpoint.describe()}")
                elif kind == "resync":
                    self._resynced(await client.snapshot())
                    return
        raise ConnectionError("the gateway ended the event stream")

    def _resynced(self, document: JSON) -> None:
        keys, threads = self._load(document)
        self.resyncs += 1
        self.bus.publish(
            StateResynced(
                keys=tuple(sorted(keys)),
                threads=tuple(sorted(threads)),
                detail=f"resynchronised with {self.endpoint.describe()}",
            )
        )
