"""Cutting reply text into pieces Discord accepts.

Plain messages hold at most 2000 characters and embed descriptions 4096. Text is split
on line boundaries (MPG's rule); a single line longer than a chunk is hard-split. When a
split falls inside a fenced code block, the chunk is closed with a fence and the next
one reopens it with the same info string, so every chunk renders as code. No chunk is
ever empty or whitespace-only (Discord refuses those); an empty reply becomes
:data:`EMPTY_REPLY`.
"""

from __future__ import annotations

PLAIN_LIMIT = 2000
"""Discord's limit for a message's content."""
EMBED_LIMIT = 4096
"""Discord's limit for an embed's description."""
EMPTY_REPLY = "(empty response)"
"""What is sent when claude answered with nothing but whitespace."""

_FENCE = "```"
_CLOSE = "\n" + _FENCE
_MIN_LIMIT = 32
_MAX_REOPEN = 16
"""A longer fence info string is reopened as a bare fence, so a header always fits a chunk."""


def chunk_text(text: str, limit: int = PLAIN_LIMIT) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters; never returns an empty list."""
    if limit < _MIN_LIMIT:
        raise ValueError(f"chunk limit must be at least {_MIN_LIMIT} characters, got {limit}")
    if not text.strip():
        return [EMPTY_REPLY]
    if len(text) <= limit:
        return [text]
    chunker = _Chunker(limit)
    for line in text.split("\n"):
        chunker.add(line)
    return chunker.finish()


def _toggles_fence(line: str) -> bool:
    return line.lstrip().startswith(_FENCE)


def _reopen_header(line: str) -> str:
    header = line.strip()
    return header if len(header) <= _MAX_REOPEN else _FENCE


class _Chunker:
    """Accumulates lines into chunks, tracking whether the text is inside a code fence."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: list[str] = []
        self._lines: list[str] = []
        self._size = 0
        self._has_body = False
        """False while the chunk holds nothing but a reopened fence header."""
        self._fence: str | None = None
        """The opening fence line (with its info string) while inside a code block."""

    def _room(self, inside_fence: bool) -> int:
        """Characters a new line may use in the current chunk (separator and closing fence excluded)."""
        separator = 1 if self._lines else 0
        closing = len(_CLOSE) if inside_fence else 0
        return self._limit - self._size - separator - closing

    def _append(self, piece: str) -> None:
        self._size += len(piece) + (1 if self._lines else 0)
        self._lines.append(piece)
        self._has_body = True

    def add(self, line: str) -> None:
        fence_after = (None if self._fence else _reopen_header(line)) if _toggles_fence(line) else self._fence
        if len(line) <= self._room(fence_after is not None):
            self._append(line)
            self._fence = fence_after
            return
        if self._has_body:
            self._flush()
            if len(line) <= self._room(fence_after is not None):
                self._append(line)
                self._fence = fence_after
                return
        # A single line longer than a whole chunk: hard-split it. Room for a closing fence
        # is kept if the text is in a code block before or after this line.
        inside = self._fence is not None or fence_after is not None
        while len(line) > self._room(inside):
            room = self._room(inside)
            self._append(line[:room])
            line = line[room:]
            self._flush()
        self._append(line)
        self._fence = fence_after

    def _flush(self) -> None:
        if self._has_body:
            body = "\n".join(self._lines)
            if self._fence is not None:
                body += _CLOSE
            if body.strip():
                self._chunks.append(body)
        self._lines = [self._fence] if self._fence is not None else []
        self._size = len(self._fence) if self._fence is not None else 0
        self._has_body = False

    def finish(self) -> list[str]:
        if self._has_body:
            # The text's own last fence (balanced or not) is left exactly as written.
            body = "\n".join(self._lines)
            if body.strip():
                self._chunks.append(body)
        return self._chunks or [EMPTY_REPLY]
