"""The approvals audit log: one JSON line per request and per decision, appended, never rewritten."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class AuditLog:
    """Appends JSON lines to ``path`` (0600). A failing write is logged, never raised: an
    unwritable disk must not leave a run waiting for ever."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(line)
        except OSError as exc:
            log.error("could not write the approvals audit log %s: %s", self.path, exc)

    def read(self) -> list[dict[str, Any]]:
        """Every entry, oldest first (for tests and ``mpg-tui`` tools)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]
