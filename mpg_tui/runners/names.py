"""Safe, deterministic tmux session names (and run directory names) for session keys.

A session key (``<threadId>`` or ``<threadId>:<agent>``) cannot be used as a tmux name
as it is: tmux reads ``:`` and ``.`` in a target as window and pane separators, and an
agent name may hold anything. The name keeps a readable, sanitised copy of the key and
always ends in a short hash of the exact key, so two keys that sanitise alike (``1:a``
and ``1_a``) still get different names, and the same key always gets the same name:
that is how a restarted gateway finds the runs of the previous one.
"""

from __future__ import annotations

import hashlib
import re

PREFIX = "mpg-"
"""Every name this package gives a tmux session starts with this."""
HASH_CHARS = 10
"""Hex digits of the key's SHA-256 kept in the name (40 bits)."""
MAX_READABLE_CHARS = 48
"""Longest sanitised copy of the key kept in a name; the hash keeps longer keys apart."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_NAME = re.compile(rf"^{re.escape(PREFIX)}(?:[A-Za-z0-9_-]{{1,{MAX_READABLE_CHARS}}}-)?[0-9a-f]{{{HASH_CHARS}}}$")


def session_name(key: str) -> str:
    """``mpg-<sanitised key>-<hash>``: letters, digits, ``_`` and ``-`` only."""
    if not key:
        raise ValueError("a session key cannot be empty")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:HASH_CHARS]
    readable = _UNSAFE.sub("_", key)[:MAX_READABLE_CHARS].strip("_-")
    return f"{PREFIX}{readable}-{digest}" if readable else f"{PREFIX}{digest}"


def is_session_name(name: str) -> bool:
    """Whether ``name`` has the shape :func:`session_name` gives (it may be any key's)."""
    return _NAME.fullmatch(name) is not None
