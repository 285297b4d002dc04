"""Run grants: which session, thread and requester a permission request comes from.

A run whose pipes the gateway does not hold (tmux, one process per turn) asks through
the MCP permission tool, which reaches the gateway over the control socket with a token
given to it at launch. The token is the grant itself, signed with a key kept in the
profile's private run directory, so a gateway restarted while the run waits still knows
where the request belongs, and a run cannot ask on another thread's behalf.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

KEY_BYTES = 32


@dataclass(frozen=True)
class RunGrant:
    key: str
    project_key: str
    thread_id: str
    requester_id: str | None
    """The member whose message started the turn (None: nobody known, e.g. after recovery)."""
    requester_name: str = ""


class BadToken(ValueError):
    """A token this gateway did not sign (or a damaged one)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(grant: RunGrant, key: bytes) -> str:
    body = _b64(json.dumps(asdict(grant), separators=(",", ":")).encode())
    mac = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(token: str, key: bytes) -> RunGrant:
    body, _, mac = token.partition(".")
    try:
        expected = hmac.new(key, body.encode(), hashlib.sha256).digest()
        if not mac or not hmac.compare_digest(expected, _unb64(mac)):
            raise BadToken("the approval token is not this gateway's")
        data = json.loads(_unb64(body))
        return RunGrant(
            key=str(data["key"]),
            project_key=str(data["project_key"]),
            thread_id=str(data["thread_id"]),
            requester_id=None if data.get("requester_id") is None else str(data["requester_id"]),
            requester_name=str(data.get("requester_name") or ""),
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        if isinstance(exc, BadToken):
            raise
        raise BadToken("the approval token is damaged") from None


def load_or_create_key(path: Path) -> bytes:
    """The signing key in ``path`` (0600), made on first use; it outlives restarts on purpose."""
    try:
        data = path.read_bytes()
        if len(data) >= KEY_BYTES:
            return data
    except FileNotFoundError:
        pass
    data = secrets.token_bytes(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return data
