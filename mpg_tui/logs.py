"""Logging: JSON lines to a rotating file, readable lines to stderr, secrets redacted.

Levels use MPG's names (``debug``, ``info``, ``warn``, ``error``) in config, on the
command line and in the file. Every record passes a :class:`SecretRedactor` before any
of our handlers formats it, so a bot or dashboard token never reaches a log, whether it
sits in the message, its arguments, an ``extra`` field or a traceback.

The file format (one JSON object a line: ``ts``, ``level``, ``logger``, ``msg``, ``exc``
when there was an exception, then any ``extra`` fields such as ``project`` or ``key``)
is read back by :func:`parse_line` for ``mpg-tui logs``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import logging.handlers
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from mpg_tui.core.bus import EventBus
from mpg_tui.core.events import LogLine

LEVELS: dict[str, int] = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
_ALIASES = {"warning": "warn", "critical": "error", "fatal": "error"}
REDACTED = "***"
MAX_BYTES = 5 * 1024 * 1024
BACKUP_COUNT = 3
# Shorter "secrets" would shred ordinary words in every message, and are no secret anyway.
MIN_SECRET_LENGTH = 4
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_OUR_HANDLER = "_mpg_tui_handler"
MAX_LOG_LINE = 500
"""Characters of a log message shown in the faces' event logs."""


def level_number(level: str | int) -> int:
    """``"warn"`` -> ``logging.WARNING``; accepts MPG's names, Python's names and numbers."""
    if isinstance(level, int):
        return level
    name = level.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(LEVELS)}")
    return LEVELS[name]


def level_name(levelno: int) -> str:
    """MPG's name for a Python level number (anything above ERROR is ``error``)."""
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


class SecretRedactor(logging.Filter):
    """Replaces every known secret value in a record with ``***``, wherever it appears."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Start redacting ``secret`` (e.g. a token that is only known after start-up)."""
        if secret and len(secret) >= MIN_SECRET_LENGTH and secret not in self._secrets:
            self._secrets.append(secret)
            # Longest first, so a secret that contains another is replaced whole.
            self._secrets.sort(key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        # The record is shared by every handler; rewriting it in place means no later
        # handler (ours or anyone's) can format the secret back in.
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not turn logging into a crash
            message = f"{record.msg} (unformattable arguments: {record.args!r})"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in extra_fields(record).items():
            if isinstance(value, str):
                setattr(record, key, self.redact(value))
            elif not isinstance(value, int | float | bool) and value is not None:
                setattr(record, key, self.redact(str(value)))
        return True


_current_redactor: SecretRedactor | None = None
"""The redactor of the handlers :func:`setup_logging` installed last (the bus handler shares it)."""


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller passed with ``extra=`` (``project``, ``key``, ...)."""
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRS and not k.startswith("_")}


def _exception_text(record: logging.LogRecord, formatter: logging.Formatter) -> str | None:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    parts = [p for p in (record.exc_text, record.stack_info) if p]
    return "\n".join(parts) or None


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``msg``, [``exc``], extras."""

    def __init__(self, redactor: SecretRedactor | None = None) -> None:
        super().__init__()
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = dict(extra_fields(record))
        entry.update(
            ts=datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            level=level_name(record.levelno),
            logger=record.name,
            msg=record.getMessage(),
        )
        exc = _exception_text(record, self)
        if exc:
            entry["exc"] = exc
        line = json.dumps(entry, ensure_ascii=False, default=str)
        # A last pass catches a secret hidden inside a non-string extra.
        return self._redactor.redact(line) if self._redactor else line


class ReadableFormatter(logging.Formatter):
    """``2024-05-01 12:00:00 warn  mpg_tui.core.gateway: message  project=web``."""

    def __init__(self, redactor: SecretRedactor | None = None) -> None:
        super().__init__()
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")
        extras = "".join(f"  {k}={v}" for k, v in extra_fields(record).items())
        line = f"{when} {level_name(record.levelno):<5} {record.name}: {record.getMessage()}{extras}"
        exc = _exception_text(record, self)
        if exc:
            line = f"{line}\n{exc}"
        return self._redactor.redact(line) if self._redactor else line


def reset_logging() -> None:
    """Remove and close the handlers :func:`setup_logging` installed."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OUR_HANDLER, False):
            root.removeHandler(handler)
            handler.close()


def setup_logging(
    level: str | int,
    log_file: Path | None,
    *,
    stderr: bool = True,
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
    max_bytes: int = MAX_BYTES,
) -> SecretRedactor:
    """Install our handlers on the root logger (replacing any from an earlier call).

    Returns the redactor so secrets learnt later can be added to it. ``stream`` replaces
    stderr for the readable lines; the file rotates at ``max_bytes``, keeping
    :data:`BACKUP_COUNT` old files.
    """
    global _current_redactor
    levelno = level_number(level)
    reset_logging()
    redactor = _current_redactor = SecretRedactor(secrets)
    handlers: list[logging.Handler] = []
    if log_file is not None:
        log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=BACKUP_COUNT, encoding="utf-8"
        )
        file_handler.setFormatter(JsonFormatter(redactor))
        handlers.append(file_handler)
    if stderr:
        stream_handler = logging.StreamHandler(stream or sys.stderr)
        stream_handler.setFormatter(ReadableFormatter(redactor))
        handlers.append(stream_handler)
    root = logging.getLogger()
    for handler in handlers:
        handler.addFilter(redactor)
        setattr(handler, _OUR_HANDLER, True)
        root.addHandler(handler)
    root.setLevel(levelno)
    # discord.py's debug output is every gateway payload; keep it out unless asked for at info.
    logging.getLogger("discord").setLevel(max(levelno, logging.INFO))
    logging.captureWarnings(True)
    return redactor


@dataclass(frozen=True)
class LogEntry:
    """One line of the JSON log, as ``mpg-tui logs`` shows it."""

    ts: str
    level: str
    logger: str
    msg: str
    exc: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def levelno(self) -> int:
        return LEVELS.get(self.level, logging.INFO)


def parse_line(line: str) -> LogEntry | None:
    """A log line back into a :class:`LogEntry`; ``None`` for anything that is not one.

    MPG's own logger wrote ``timestamp``/``message``; those lines are read too.
    """
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    ts = data.pop("ts", None) or data.pop("timestamp", None)
    msg = data.pop("msg", None)
    if msg is None:
        msg = data.pop("message", None)
    level = data.pop("level", None)
    if not isinstance(ts, str) or not isinstance(msg, str) or not isinstance(level, str):
        return None
    level = _ALIASES.get(level.lower(), level.lower())
    if level not in LEVELS:
        return None
    logger = data.pop("logger", "")
    exc = data.pop("exc", None)
    return LogEntry(
        ts=ts,
        level=level,
        logger=logger if isinstance(logger, str) else str(logger),
        msg=msg,
        exc=exc if isinstance(exc, str) else None,
        extra=data,
    )


def log_files(log_file: Path) -> list[Path]:
    """The log file and its rotated backups that exist, oldest first."""
    backups = [log_file.with_name(f"{log_file.name}.{i}") for i in range(BACKUP_COUNT, 0, -1)]
    return [p for p in [*backups, log_file] if p.is_file()]


def read_entries(log_file: Path) -> Iterator[LogEntry]:
    """Every entry of the log and its backups, oldest first; unreadable lines are skipped."""
    for path in log_files(log_file):
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                entry = parse_line(line)
                if entry is not None:
                    yield entry


class BusHandler(logging.Handler):
    """Hands warnings and errors to the event bus as :class:`LogLine`, for the faces' event logs.

    The cockpit has no stderr to write to, so this is how an operator there sees what went
    wrong. Records from other threads (``asyncio.to_thread`` work) are handed to the loop.
    """

    def __init__(self, bus: EventBus, loop: asyncio.AbstractEventLoop, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self._bus = bus
        self._loop = loop
        self._emitting = threading.local()
        if _current_redactor is not None:
            self.addFilter(_current_redactor)

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._emitting, "active", False):
            return  # a listener that logs while handling a LogLine must not loop
        self._emitting.active = True
        try:
            event = LogLine(level=record.levelname, logger=record.name, message=record.getMessage()[:MAX_LOG_LINE])
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self._loop:
                self._bus.publish(event)
            elif not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._bus.publish, event)
        except Exception:
            self.handleError(record)
        finally:
            self._emitting.active = False


def publish_logs_to(bus: EventBus) -> Callable[[], None]:
    """Send warnings and errors to ``bus`` from now on (call inside the loop); returns the undo."""
    handler = BusHandler(bus, asyncio.get_running_loop())
    root = logging.getLogger()
    root.addHandler(handler)
    return lambda: root.removeHandler(handler)
