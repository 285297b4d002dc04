"""The stand-in's session transcripts, kept where the real CLI keeps them.

``$CLAUDE_CONFIG_DIR`` (else ``~/.claude``) ``/projects/<cwd with / replaced by ->/<session id>.jsonl``,
one JSON record a line.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any


def config_dir() -> Path:
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(configured) if configured else Path.home() / ".claude"


def session_file(cwd: str, session_id: str) -> Path:
    return config_dir() / "projects" / cwd.replace("/", "-") / f"{session_id}.jsonl"


def read_records(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def append_record(path: Path, session_id: str, cwd: str, role: str, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "type": role,
        "sessionId": session_id,
        "cwd": cwd,
        "uuid": str(uuid.uuid4()),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "message": {"role": role, "content": content},
    }
    with path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(record, ensure_ascii=False) + "\n")
