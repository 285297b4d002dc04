"""A cockpit attached to gateways that run in other processes, here or on other machines.

The gateway keeps serving when this cockpit quits. The first snapshot of each gateway is
read before the app is built (its projects make the sidebar); from then on
:class:`~mpg_tui.control.remote.RemoteCore` follows the event stream as a worker of the
app, reconnecting on its own while a gateway restarts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from collections.abc import Sequence

import aiohttp

from mpg_tui.control.client import Endpoint
from mpg_tui.control.multi import MultiCore
from mpg_tui.control.protocol import ControlError, ProtocolError
from mpg_tui.control.remote import RemoteCore

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED = 0, 1
_REACH_ERRORS = (aiohttp.ClientError, OSError, ControlError, ProtocolError, TimeoutError)


class AttachError(Exception):
    """No gateway could be reached; the message is meant for the operator."""


async def connect_all(endpoints: Sequence[Endpoint]) -> list[RemoteCore]:
    """A view of each gateway; one that cannot be reached now is followed from when it can.

    Raises :class:`AttachError` when none answers, or one refuses us (a wrong token).
    """

    async def one(endpoint: Endpoint) -> RemoteCore | BaseException:
        try:
            return await RemoteCore.attach(endpoint)
        except _REACH_ERRORS as exc:
            return exc

    results = await asyncio.gather(*(one(e) for e in endpoints))
    cores: list[RemoteCore] = []
    failures: list[str] = []
    for endpoint, result in zip(endpoints, results, strict=True):
        if isinstance(result, RemoteCore):
            cores.append(result)
            continue
        reason = result.message if isinstance(result, ControlError) else str(result) or type(result).__name__
        failures.append(f"{endpoint.label or endpoint.describe()}: {reason}")
        if isinstance(result, ControlError) and result.code in ("unauthorized", "forbidden"):
            raise AttachError(f"the gateway at {endpoint.describe()} refused this cockpit: {reason}")
        log.warning("gateway %s not reachable now (%s); the cockpit keeps trying", endpoint.describe(), reason)
        cores.append(RemoteCore(endpoint))
    if len(failures) == len(endpoints):
        raise AttachError("no gateway could be reached: " + "; ".join(failures))
    return cores


def combine(cores: Sequence[RemoteCore]) -> RemoteCore | MultiCore:
    return cores[0] if len(cores) == 1 else MultiCore(cores)


def run_attached(endpoints: Sequence[Endpoint]) -> int:
    """Run the cockpit over the gateways at ``endpoints`` until the operator quits."""
    if len(endpoints) == 1:  # one gateway: nothing to tell apart, so no labels
        endpoints = [dataclasses.replace(endpoints[0], label="")]
    try:
        cores = asyncio.run(connect_all(endpoints))
    except AttachError as exc:
        sys.stderr.write(f"mpg-tui: {exc}\n")
        return EXIT_FAILED
    from mpg_tui.tui.app import make_app

    core = combine(cores)
    where = ", ".join(e.label if len(endpoints) > 1 else e.describe() for e in endpoints)
    app = make_app(core, run_core=core.run, attached_to=where, elsewhere=core.elsewhere)
    app.run()
    return EXIT_OK
